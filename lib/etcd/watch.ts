// One etcd watch on a key range from a given revision, as a single stream whose end is
// a typed error: the caller decides whether to resume, re-read or give up. etcd3's
// WatchManager instead reconnects on its own schedule and hides the gap, which is what
// a caller that must notice "etcd down" and "history compacted" cannot use.
import type { IWatchResponse } from 'etcd3';
import { WarrenError } from '../errors.js';
import { StoreRejectedError, StoreUnavailableError } from './errors.js';
import { storeErrorOf } from './store-error.js';
import type { EtcdStore } from './store.js';

/** The revision asked for is older than etcd's history: read the range again instead. */
export class WatchCompactedError extends WarrenError {
  constructor(readonly key: string, readonly startRevision: string, readonly compactRevision: string) {
    super('STORE_WATCH_COMPACTED',
      `etcd watch on ${key} from revision ${startRevision} refused: history before revision ${compactRevision} is compacted`);
  }
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** Empty for a delete. */
  value: string;
  modRevision: string;
}

export interface WatchRangeRequest {
  key: string;
  /** Exclusive end, as in a range read (prefixEnd(key) for a prefix). */
  rangeEnd: string;
  /** First revision to deliver (a snapshot's revision + 1). */
  startRevision: string;
}

export interface WatchHandlers {
  /** etcd accepted the watch; `revision` is the store's current revision. */
  onCreated(revision: string): void;
  /** Events of one revision or more, in revision order. */
  onEvents(events: WatchEvent[]): void;
}

export interface RangeWatch {
  /** Resolves after close(); rejects with StoreUnavailableError, StoreRejectedError or WatchCompactedError. */
  ended: Promise<void>;
  close(): void;
}

export function watchRange(store: EtcdStore, request: WatchRangeRequest, handlers: WatchHandlers): RangeWatch {
  let closeStream: () => void = () => undefined;
  let closed = false;
  const ended = (async () => {
    store.roundTrips++;
    let stream;
    try {
      stream = await store.client.watchClient.watch();
    } catch (err) {
      throw storeErrorOf(store, 'watch', err);
    }
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        // cancel() makes grpc emit a CANCELLED error, which `settled` ignores.
        stream.cancel();
        if (err) reject(err);
        else resolve();
      };
      stream.on('data', (r: IWatchResponse) => {
        if (settled) return;
        try {
          onResponse(request, r, handlers);
        } catch (err) {
          finish(err as Error);
        }
      });
      stream.on('error', (err: Error) => finish(closed ? undefined : storeErrorOf(store, 'watch', err)));
      // An end we did not ask for is etcd going away (a graceful shutdown): worth retrying.
      stream.on('end', () => finish(closed ? undefined
        : new StoreUnavailableError(store.endpoints, `etcd at ${store.endpoints.join(',')} ended the watch stream on ${request.key}`)));
      closeStream = () => finish();
      if (closed) return finish();
      stream.write({
        create_request: {
          key: Buffer.from(request.key),
          range_end: Buffer.from(request.rangeEnd),
          start_revision: request.startRevision,
        },
      });
    });
  })();
  return {
    ended,
    close: () => {
      closed = true;
      closeStream();
    },
  };
}

function onResponse(request: WatchRangeRequest, r: IWatchResponse, handlers: WatchHandlers): void {
  if (r.compact_revision && r.compact_revision !== '0') {
    throw new WatchCompactedError(request.key, request.startRevision, r.compact_revision);
  }
  if (r.canceled) {
    throw new StoreRejectedError(`etcd cancelled the watch on ${request.key}: ${r.cancel_reason || 'no reason given'}`);
  }
  if (r.created) handlers.onCreated(r.header.revision);
  if (r.events.length > 0) {
    handlers.onEvents(r.events.map((e) => ({
      type: e.type === 'Delete' ? 'delete' : 'put',
      key: e.kv.key.toString('utf8'),
      value: e.type === 'Delete' ? '' : e.kv.value.toString('utf8'),
      modRevision: e.kv.mod_revision,
    })));
  }
}
