// The one door to etcd: raw KV requests (transactions and ranges), each counted as a
// round trip, retried with bounded backoff while etcd cannot be reached, and every
// failure turned into one of the store's own errors. etcd3's own retry and circuit
// breaker are switched off so that this is the only retry policy in play.
import { readFileSync } from 'node:fs';
import { readSecretFile } from '../secret-file.js';
import { noop } from 'cockatiel';
import { Etcd3, isRecoverableError, type AuthClient, type IRangeRequest, type IRangeResponse, type ITxnRequest, type ITxnResponse } from 'etcd3';
import { errorMessage } from '../errors.js';
import { parseEndpoints } from './endpoints.js';
import { oneLine, rejected } from './store-error.js';
import { StoreConfigError, StoreUnavailableError } from './errors.js';
import { realClock, withRetry, type BackoffOptions, type Clock } from './retry.js';

export interface EtcdSettings {
  /** Comma-separated or listed; host:port or http(s) URLs. */
  endpoints: string | readonly string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** How long to keep retrying while etcd is unreachable, per request. */
  timeoutMs: number;
  /** Deadline of one request. */
  requestTimeoutMs?: number;
}

export interface StoreHooks {
  clock?: Clock;
  backoff?: BackoffOptions;
  onRetry?: (message: string) => void;
}

function readPem(what: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StoreConfigError(`${what} ${path} cannot be read: ${errorMessage(err)}`, { cause: err });
  }
}

/** A dead connection is noticed within their sum (the agent promises 15 s). */
const KEEPALIVE_TIME_MS = 6_000;
const KEEPALIVE_TIMEOUT_MS = 4_000;

export class EtcdStore {
  /** etcd requests sent, failed ones included: the cost measure of the allocators. */
  roundTrips = 0;
  readonly endpoints: readonly string[];
  /** For the streaming RPCs (watch, lease keep-alive: lib/etcd/watch.ts, lease.ts), which retry on their own terms. */
  readonly client: Etcd3;
  private readonly requestTimeoutMs: number;

  constructor(private readonly settings: EtcdSettings, private readonly hooks: StoreHooks = {}) {
    if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
      throw new StoreConfigError('etcd client certificate and key go together: give both --etcd-cert and --etcd-key, or neither');
    }
    const tls = settings.caFile !== undefined || settings.certFile !== undefined;
    this.endpoints = parseEndpoints(settings.endpoints, tls);
    const ca = readPem('etcd CA certificate', settings.caFile);
    const cert = readPem('etcd client certificate', settings.certFile);
    // The key is a secret: refused when group or others can read it (lib/secret-file.ts).
    const key = settings.keyFile === undefined ? undefined : readSecretFile('etcd client key', settings.keyFile);
    this.requestTimeoutMs = settings.requestTimeoutMs ?? 5_000;
    this.client = new Etcd3({
      hosts: [...this.endpoints],
      // grpc accepts a missing root (system CAs); etcd3's type insists on a Buffer.
      credentials: tls ? { rootCertificate: ca as Buffer, certChain: cert, privateKey: key } : undefined,
      faultHandling: { host: () => noop, global: noop },
      grpcOptions: {
        // A restarted etcd should be found again within a backoff step, not grpc's 2 minutes.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // A host that vanished without closing its sockets (half-open) leaves a watch stream
        // waiting forever: pings find it within keepalive time + timeout. etcd refuses pings
        // more often than every 5 s (--grpc-keepalive-min-time) with GOAWAY.
        'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
        'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      },
    });
  }

  txn(request: ITxnRequest): Promise<ITxnResponse> {
    return this.call('txn', (deadline) => this.client.kv.txn(request, { deadline }));
  }

  range(request: IRangeRequest): Promise<IRangeResponse> {
    return this.call('range', (deadline) => this.client.kv.range(request, { deadline }));
  }

  /** One request of etcd's auth service (status, users, roles), with the retry and errors of the KV requests. */
  auth<T>(what: string, send: (auth: AuthClient, options: { deadline: number }) => Promise<T>): Promise<T> {
    return this.call(what, (deadline) => send(this.client.auth, { deadline }));
  }

  close(): void {
    this.client.close();
  }

  private async call<T>(what: string, send: (deadline: number) => Promise<T>): Promise<T> {
    const clock = this.hooks.clock ?? realClock;
    const where = this.endpoints.join(',');
    try {
      return await withRetry(async (remainingMs) => {
        this.roundTrips++;
        return send(Date.now() + Math.max(100, Math.min(this.requestTimeoutMs, remainingMs)));
      }, {
        timeoutMs: this.settings.timeoutMs,
        clock,
        backoff: this.hooks.backoff,
        isRetryable: (err) => err instanceof Error && isRecoverableError(err),
        onRetry: (err, attempt, delayMs) =>
          this.hooks.onRetry?.(`etcd at ${where} unreachable (${oneLine(err)}); retry ${attempt} in ${delayMs} ms`),
        giveUp: (err, elapsedMs, attempts) => new StoreUnavailableError(this.endpoints,
          `etcd at ${where} unreachable for ${(elapsedMs / 1000).toFixed(1)} s (${attempts} attempts): ${oneLine(err)}${tlsHint(err)}`, { cause: err }),
      });
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
      throw rejected(where, what, err);
    }
  }
}

// A refused handshake does not heal by waiting; say where to look.
function tlsHint(err: unknown): string {
  return /certificate|SSL routines|handshake/i.test(errorMessage(err))
    ? ' (the TLS handshake failed: check --etcd-cacert, --etcd-cert and --etcd-key)' : '';
}
