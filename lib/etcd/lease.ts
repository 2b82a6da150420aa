// etcd leases as three single-shot requests (grant, one keep-alive, revoke), each
// counted as a round trip of the store and failing with the store's own errors. The
// caller owns timing and retry: etcd3's Lease object would run its own keep-alive timer
// and its own notion of "lost", a second retry policy beside the store's.
import { EtcdLeaseInvalidError } from 'etcd3';
import { StoreRejectedError, StoreUnavailableError } from './errors.js';
import { storeErrorOf } from './store-error.js';
import type { EtcdStore } from './store.js';

export class EtcdLeases {
  constructor(private readonly store: EtcdStore, private readonly requestTimeoutMs = 5_000) {}

  /** A new lease of `ttlSeconds`; its id as etcd's decimal string. */
  async grant(ttlSeconds: number): Promise<string> {
    this.store.roundTrips++;
    try {
      const r = await this.store.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, { deadline: this.deadline() });
      return r.ID;
    } catch (err) {
      throw storeErrorOf(this.store, 'lease grant', err);
    }
  }

  /** Renews the lease once: the seconds it now has left, 0 when etcd no longer knows it (expired or revoked). */
  async keepAliveOnce(id: string): Promise<number> {
    this.store.roundTrips++;
    try {
      const stream = await this.store.client.leaseClient.leaseKeepAlive({ deadline: this.deadline() });
      const ttl = await new Promise<string>((resolve, reject) => {
        stream.on('data', (r: { TTL: string }) => resolve(r.TTL));
        stream.on('error', reject);
        stream.on('end', () => reject(new StoreUnavailableError(this.store.endpoints,
          `etcd at ${this.store.endpoints.join(',')} ended the lease keep-alive stream without an answer`)));
        stream.write({ ID: id });
      }).finally(() => stream.end());
      return Number(ttl);
    } catch (err) {
      throw storeErrorOf(this.store, 'lease keep-alive', err);
    }
  }

  /** Deletes the lease and every key attached to it; a lease already gone counts as revoked. */
  async revoke(id: string): Promise<void> {
    this.store.roundTrips++;
    try {
      await this.store.client.leaseClient.leaseRevoke({ ID: id }, { deadline: this.deadline() });
    } catch (err) {
      const typed = storeErrorOf(this.store, 'lease revoke', err);
      if (isLeaseGone(typed)) return;
      throw typed;
    }
  }

  private deadline(): number {
    return Date.now() + this.requestTimeoutMs;
  }
}

/** etcd answered "requested lease not found": the lease expired or was revoked. */
export function isLeaseGone(err: unknown): boolean {
  return err instanceof StoreRejectedError && err.cause instanceof EtcdLeaseInvalidError;
}
