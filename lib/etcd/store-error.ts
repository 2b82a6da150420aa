// The streaming RPCs (watch, lease keep-alive) use the store's etcd3 client directly, and
// their errors need the store's classification.
import { castGrpcError, EtcdPermissionDeniedError, isRecoverableError } from 'etcd3';
import { errorMessage } from '../errors.js';
import { StorePermissionError, StoreRejectedError, StoreUnavailableError } from './errors.js';
import type { EtcdStore } from './store.js';

/** The store's error for a failed streaming or lease RPC: unreachable (retry) or refused (do not). */
export function storeErrorOf(store: EtcdStore, what: string, err: unknown): StoreUnavailableError | StoreRejectedError {
  if (err instanceof StoreUnavailableError || err instanceof StoreRejectedError) return err;
  const typed = err instanceof Error ? castGrpcError(err) : new Error(String(err));
  const where = store.endpoints.join(',');
  if (isRecoverableError(typed)) {
    return new StoreUnavailableError(store.endpoints, `etcd at ${where} unreachable during ${what} (${oneLine(typed)})`, { cause: typed });
  }
  return rejected(where, what, typed);
}

/** What etcd refused: retrying would not help. */
export function rejected(where: string, what: string, err: unknown): StoreRejectedError {
  const typed = err instanceof Error ? castGrpcError(err) : err;
  const Refusal = typed instanceof EtcdPermissionDeniedError ? StorePermissionError : StoreRejectedError;
  return new Refusal(`etcd at ${where} refused the ${what} request: ${oneLine(err)}`, { cause: typed });
}

/** An error on one line, without what grpc-js decorates connection errors with: a timestamp and an empty "Resolution note". */
export function oneLine(err: unknown): string {
  return errorMessage(err).replace(/\s+/g, ' ').replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/\.? Resolution note:\s*$/, '').trim();
}
