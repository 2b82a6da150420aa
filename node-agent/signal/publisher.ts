// Keeps this node's record in etcd under <prefix>/agents/<node>, attached to a lease
// that the publisher keeps alive, so a crashed node's record disappears one TTL after
// its last keep-alive and peers drop its tunnel.
//
// stop() does not delete the record: it stops the keep-alives and lets the lease run
// out. An agent restart (upgrade, crash loop, node reboot) re-publishes the same content
// under a new lease well within the TTL, and peers, which compare content and not
// revisions, never see the node go and never touch its tunnel. withdraw() is for a node
// leaving the cluster for good (drain, decommission): it revokes the lease, deleting the
// record at once, and every peer removes the node within its emission delay.
//
// While etcd is unreachable the publisher retries with backoff, forever, and says so in
// status(); nothing it does throws into the agent. An invalid or secret-bearing record is
// refused synchronously, by the constructor or update().
import type { ITxnRequest } from 'etcd3';
import { StoreUnavailableError } from '../../lib/etcd/errors.js';
import { EtcdLeases, isLeaseGone } from '../../lib/etcd/lease.js';
import { backoffDelay, type BackoffOptions } from '../../lib/etcd/retry.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { systemTimers, type Timers } from '../nat/timers.js';
import { failed, succeeded, type ConnectionState } from './connection-state.js';
import { KEEPALIVES_PER_TTL, RECORD_TTL_SECONDS, RETRY_INITIAL_MS, RETRY_MAX_MS } from './knobs.js';
import type { AgentKeys } from './keys.js';
import { keepAliveDue, nextPublishStep, type PublishState, type PublishStep } from './publish-step.js';
import { contentKey, serializeRecord, type NodeRecordContent } from './record.js';
import { Wakeable } from './wakeable.js';

export type LeaseOps = Pick<EtcdLeases, 'grant' | 'keepAliveOnce' | 'revoke'>;

export interface PublisherOptions {
  store: EtcdStore;
  keys: AgentKeys;
  record: NodeRecordContent;
  ttlSeconds?: number;
  timers?: Timers;
  /** Wall clock for updatedAt and the connection state's timestamps. */
  now?: () => Date;
  backoff?: BackoffOptions;
  onState?: (state: ConnectionState) => void;
  /** Failures other than "unreachable" (permission denied...): retried like the others, but worth a log line. */
  onError?: (err: unknown) => void;
  /** Seams for tests; default to the store's. */
  kv?: Pick<EtcdStore, 'txn'>;
  leases?: LeaseOps;
}

export interface PublisherStatus {
  connection: ConnectionState;
  leaseId: string | undefined;
  /** etcd holds the current record under the current lease. */
  published: boolean;
  /** Record writes so far (one per content change or new lease). */
  writes: number;
}

export class Publisher {
  private readonly timers: Timers;
  private readonly now: () => Date;
  private readonly ttlSeconds: number;
  private readonly backoff: BackoffOptions;
  private readonly kv: Pick<EtcdStore, 'txn'>;
  private readonly leases: LeaseOps;
  private readonly idle: Wakeable;
  private readonly pause: Wakeable;
  private state: PublishState;
  private record: NodeRecordContent;
  private updatedAt: string;
  private connection: ConnectionState;
  private writes = 0;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: PublisherOptions) {
    this.timers = options.timers ?? systemTimers;
    this.now = options.now ?? (() => new Date());
    this.ttlSeconds = options.ttlSeconds ?? RECORD_TTL_SECONDS;
    this.backoff = options.backoff ?? { initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS, random: Math.random };
    this.kv = options.kv ?? options.store;
    this.leases = options.leases ?? new EtcdLeases(options.store);
    this.idle = new Wakeable(this.timers);
    this.pause = new Wakeable(this.timers);
    this.updatedAt = this.now().toISOString();
    serializeRecord({ ...options.record, updatedAt: this.updatedAt });
    this.record = options.record;
    this.state = { leaseId: undefined, written: undefined, desired: contentKey(options.record), keepAliveDueAt: 0 };
    this.connection = { state: 'starting', since: this.now() };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Publishes `record` if its content differs from the current one; throws when it is invalid or carries a secret. */
  update(record: NodeRecordContent): void {
    const updatedAt = this.now().toISOString();
    // Checked before the comparison: content equality ignores unknown fields, a secret among them included.
    serializeRecord({ ...record, updatedAt });
    const key = contentKey(record);
    if (key === this.state.desired) return;
    this.record = record;
    this.updatedAt = updatedAt;
    this.state = { ...this.state, desired: key };
    this.idle.wake();
  }

  status(): PublisherStatus {
    return {
      connection: this.connection,
      leaseId: this.state.leaseId,
      published: this.state.leaseId !== undefined && this.state.written === this.state.desired,
      writes: this.writes,
    };
  }

  /** Stops keeping the lease alive; the record stays until the TTL runs out (see the file comment). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.idle.wake();
    this.pause.wake();
    await this.loop;
    this.setConnection({ state: 'stopped', since: this.now() });
  }

  /** Stops, then deletes the record at once: the node is leaving. Throws the store's error when etcd cannot be reached (the TTL then does it). */
  async withdraw(): Promise<void> {
    await this.stop();
    const key = this.options.keys.agent(this.options.record.node);
    // The record may still hang on a previous incarnation's lease: delete it by key too.
    await this.kv.txn({ compare: [], success: [{ request_delete_range: { key: Buffer.from(key) } }], failure: [] });
    if (this.state.leaseId !== undefined) await this.leases.revoke(this.state.leaseId);
    this.state = { ...this.state, leaseId: undefined, written: undefined };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const step = nextPublishStep(this.state, this.timers.now());
      if (step.do === 'wait') {
        await this.idle.wait(step.ms);
        continue;
      }
      try {
        await this.perform(step);
        attempt = 0;
        this.setConnection(succeeded(this.connection, this.now()));
      } catch (err) {
        if (this.stopping) break;
        if (isLeaseGone(err)) {
          // Expired while etcd could not hear us (or revoked by hand): start over with a new one.
          this.state = { ...this.state, leaseId: undefined, written: undefined };
          continue;
        }
        if (!(err instanceof StoreUnavailableError)) this.options.onError?.(err);
        this.setConnection(failed(this.connection, this.now(), err));
        await this.pause.wait(backoffDelay(attempt++, this.backoff));
      }
    }
  }

  private async perform(step: Exclude<PublishStep, { do: 'wait' }>): Promise<void> {
    if (step.do === 'grant') {
      const leaseId = await this.leases.grant(this.ttlSeconds);
      // A new lease holds no key yet: the record must be written under it.
      this.state = { ...this.state, leaseId, written: undefined, keepAliveDueAt: keepAliveDue(this.timers.now(), this.ttlSeconds, KEEPALIVES_PER_TTL) };
    } else if (step.do === 'put') {
      const leaseId = this.state.leaseId!;
      const desired = this.state.desired;
      const value = serializeRecord({ ...this.record, updatedAt: this.updatedAt });
      await this.kv.txn(putUnderLease(this.options.keys.agent(this.record.node), value, leaseId));
      this.writes++;
      // update() may have changed the desired record meanwhile: record what was written.
      if (this.state.leaseId === leaseId) this.state = { ...this.state, written: desired };
    } else {
      const leaseId = this.state.leaseId!;
      const ttl = await this.leases.keepAliveOnce(leaseId);
      if (this.state.leaseId !== leaseId) return;
      this.state = ttl > 0
        ? { ...this.state, keepAliveDueAt: keepAliveDue(this.timers.now(), Math.min(ttl, this.ttlSeconds), KEEPALIVES_PER_TTL) }
        : { ...this.state, leaseId: undefined, written: undefined };
    }
  }

  private setConnection(next: ConnectionState): void {
    if (next === this.connection) return;
    this.connection = next;
    this.options.onState?.(next);
  }
}

function putUnderLease(key: string, value: string, leaseId: string): ITxnRequest {
  return { compare: [], success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: leaseId } }], failure: [] };
}
