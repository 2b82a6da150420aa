// The SD-EWAN gateway election. One key, <prefix>/gateway/active, holds the active node's
// name under that node's lease. A candidate takes the key only while it is missing (one
// transaction: If(missing) Then(put under my lease) Else(get)), renews its lease every
// second while it holds it, and steps down by itself once no renewal has succeeded for
// TTL minus a margin: before etcd can have expired the lease and let a standby in, so two
// nodes never act as active at once (as far as a lease and two clocks of the same rate
// allow). Every node, candidate or not, follows the key: the others route the overlay's
// ranges to the holder.
//
// The holder is learnt from a watch on the key, not from a poll. Failover time is how
// soon a standby notices that the key is gone: a watch delivers the delete (a resign, an
// expired lease) within a round trip, where a 1 s poll adds up to a second to every
// failover and costs every node one read a second forever, a watch nothing while nothing
// changes. What a broken watch misses, the range read that starts every watch catches
// up on. (A stream that stalls without grpc ever reporting it would leave a follower on
// a stale holder; an active candidate still notices, because its renewals time out.)
//
// Decisions are pure (decideElection, with `now` passed in); GatewayElection performs
// them and owns the timing, as the signal publisher does.
import { keyLayout } from '../../lib/etcd/keys.js';
import { nodeNameProblem } from '../../lib/names.js';
import { WarrenError } from '../../lib/errors.js';
import { StoreUnavailableError } from '../../lib/etcd/errors.js';
import { EtcdLeases, isLeaseGone } from '../../lib/etcd/lease.js';
import { get, kvOf, missing, putWithLease, text } from '../../lib/etcd/ops.js';
import { backoffDelay, type BackoffOptions } from '../../lib/etcd/retry.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { watchRange, WatchCompactedError, type RangeWatch } from '../../lib/etcd/watch.js';
import { systemTimers, type TimerHandle, type Timers } from '../nat/timers.js';
import { Wakeable } from '../signal/wakeable.js';

// Knobs, each with its reason.
/** A dead or cut-off active keeps the gateway for at most this long: the failover time. */
export const GATEWAY_TTL_SECONDS = 5;
/** Five renewals per TTL: three may be lost before the step-down margin is reached. */
export const RENEW_EVERY_MS = 1_000;
/**
 * Step down this long before the lease can expire. It covers a timer firing late on a
 * busy node and the role needing time to stop acting (the tunnels going down); clock
 * rates differ by far less. The step-down deadline counts from when the last successful
 * keep-alive was sent, which etcd can only have received later.
 */
export const STEP_DOWN_MARGIN_MS = 1_000;
/** Retries while etcd cannot be reached: at most a second apart, so a failover after an outage is not held up by a long backoff. */
export const RETRY_INITIAL_MS = 100;
export const RETRY_MAX_MS = 1_000;
/** Nothing is due while following: only a change of the key (or stop()) wakes the loop. This only bounds a missed wake-up. */
const IDLE_RECHECK_MS = 60_000;

export class ElectionConfigError extends WarrenError {
  constructor(message: string) {
    super('GATEWAY_ELECTION_CONFIG', message);
  }
}

/** The key the active gateway's name lives under. */
export function gatewayKey(prefix: string): string {
  return keyLayout(prefix).gateway;
}

export interface ElectionTiming {
  ttlMs: number;
  renewEveryMs: number;
  marginMs: number;
}

/** Pure: the timing, refused when a holder would step down before its second renewal could have helped. */
export function electionTiming(ttlSeconds: number, renewEveryMs: number, marginMs: number): ElectionTiming {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 2) throw new ElectionConfigError(`gateway lease TTL ${ttlSeconds} s: must be a whole number of seconds, at least 2`);
  if (!(renewEveryMs > 0) || !(marginMs >= 0)) throw new ElectionConfigError(`gateway renewal every ${renewEveryMs} ms with a ${marginMs} ms margin: both must be positive`);
  const ttlMs = ttlSeconds * 1000;
  if (ttlMs - marginMs < 2 * renewEveryMs) {
    throw new ElectionConfigError(`gateway lease TTL ${ttlSeconds} s minus the ${marginMs} ms step-down margin leaves room for fewer than two renewals every ${renewEveryMs} ms`);
  }
  return { ttlMs, renewEveryMs, marginMs };
}

export interface Holder {
  node: string;
  /** The lease the key hangs on, where known; only this node's own lease is ever compared. */
  lease: string | undefined;
}

export interface OwnLease {
  id: string;
  /** Monotonic ms at which the last keep-alive etcd answered (or the grant) was sent: etcd's expiry is at least a TTL after it. */
  renewedAt: number;
}

export interface ElectionInput {
  me: string;
  candidate: boolean;
  /** What etcd last said holds the key; undefined: the key is missing (or nothing is known yet). */
  holder: Holder | undefined;
  lease: OwnLease | undefined;
  now: number;
}

export type ElectionAction =
  /** The key is missing and this node may hold it: take it. */
  | { do: 'campaign' }
  /** This node holds the key under a lease etcd cannot have expired: renew in `inMs`; unless a renewal succeeds first, step down in `stepDownInMs`. */
  | { do: 'renew'; inMs: number; stepDownInMs: number }
  /** This node holds the key, but its lease may expire at any moment: stop acting as active, keep trying to renew. */
  | { do: 'step-down' }
  /** Another node holds the key, or none does and this node may not take it. */
  | { do: 'follow'; active: string | undefined };

/** Pure: when a holder whose last renewal was sent at `lease.renewedAt` must stop acting as active. */
export function stepDownAt(lease: OwnLease, t: ElectionTiming): number {
  return lease.renewedAt + t.ttlMs - t.marginMs;
}

/** Pure: a campaign may put the key under `lease` only while a holder under it could still act; otherwise it grants a new one. */
export function leaseUsable(lease: OwnLease | undefined, now: number, t: ElectionTiming): lease is OwnLease {
  return lease !== undefined && now < stepDownAt(lease, t);
}

export function decideElection(s: ElectionInput, t: ElectionTiming): ElectionAction {
  const { holder, lease, now } = s;
  // Holding means my name under my current lease: my name under another lease is a
  // previous incarnation's key, which nothing can renew and which expires within a TTL.
  if (holder && lease && holder.node === s.me && holder.lease === lease.id) {
    const deadline = stepDownAt(lease, t);
    if (now >= deadline) return { do: 'step-down' };
    return { do: 'renew', inMs: Math.max(0, lease.renewedAt + t.renewEveryMs - now), stepDownInMs: deadline - now };
  }
  if (holder) return { do: 'follow', active: holder.node };
  return s.candidate ? { do: 'campaign' } : { do: 'follow', active: undefined };
}

export interface Verdict {
  active: string | undefined;
  iAmActive: boolean;
}

/** Pure: what the node tells the role after deciding `action`. A node stepping down names no one: it can no longer vouch for itself, and whoever follows is not known yet. */
export function verdictOf(action: ElectionAction, me: string): Verdict {
  switch (action.do) {
    case 'renew': return { active: me, iAmActive: true };
    case 'follow': return { active: action.active, iAmActive: false };
    default: return { active: undefined, iAmActive: false };
  }
}

export interface GatewayElectionOptions {
  store: EtcdStore;
  /** The etcd prefix (default layout: /warren). */
  prefix: string;
  node: string;
  candidate: boolean;
  ttlSeconds?: number;
  renewEveryMs?: number;
  marginMs?: number;
  timers?: Timers;
  backoff?: BackoffOptions;
  /** Every change of the active node or of this node's part in it; called synchronously. */
  onChange: (active: string | undefined, iAmActive: boolean) => void;
  /** Failures other than "unreachable" (permission denied...): retried like the others, but worth a log line. */
  onError?: (err: unknown) => void;
}

export interface ElectionStatus extends Verdict {
  leaseId: string | undefined;
  /** Monotonic ms (the timers' clock) at which the last successful renewal was sent. */
  renewedAt: number | undefined;
}

export class GatewayElection {
  readonly key: string;
  private readonly timing: ElectionTiming;
  private readonly timers: Timers;
  private readonly backoff: BackoffOptions;
  private readonly leases: EtcdLeases;
  /** Cut short by every change of the key, so a standby campaigns the moment the key goes. */
  private readonly nudge: Wakeable;
  private readonly followPause: Wakeable;
  private holder: Holder | undefined;
  /** The etcd revision `holder` was observed at: older news is dropped. */
  private revision = -1n;
  private lease: OwnLease | undefined;
  private verdict: Verdict = { active: undefined, iAmActive: false };
  private stepDownTimer: TimerHandle | undefined;
  private watch: RangeWatch | undefined;
  private stopping = false;
  private loops: Promise<void>[] | undefined;
  private stopped: Promise<void> | undefined;
  private candidate: boolean;

  constructor(private readonly o: GatewayElectionOptions) {
    this.candidate = o.candidate;
    const problem = nodeNameProblem(o.node);
    if (problem) throw new ElectionConfigError(`gateway election node name ${JSON.stringify(o.node)} ${problem}`);
    this.key = gatewayKey(o.prefix);
    this.timing = electionTiming(o.ttlSeconds ?? GATEWAY_TTL_SECONDS, o.renewEveryMs ?? RENEW_EVERY_MS, o.marginMs ?? STEP_DOWN_MARGIN_MS);
    this.timers = o.timers ?? systemTimers;
    this.backoff = o.backoff ?? { initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS, random: Math.random };
    // A keep-alive slower than two renewal periods is as good as lost: the next one gets its turn before the step-down.
    this.leases = new EtcdLeases(o.store, 2 * this.timing.renewEveryMs);
    this.nudge = new Wakeable(this.timers);
    this.followPause = new Wakeable(this.timers);
  }

  start(): void {
    this.loops ??= [this.followLoop(), ...(this.candidate ? [this.leaseLoop()] : [])];
  }

  /**
   * A node that was only following becomes a candidate: one whose device identity had
   * to come from SCC first (a candidate must not win before it can hold the tunnels).
   */
  stand(): void {
    if (this.candidate || this.stopping) return;
    this.candidate = true;
    if (this.loops) this.loops.push(this.leaseLoop());
  }

  status(): ElectionStatus {
    return { ...this.verdict, leaseId: this.lease?.id, renewedAt: this.lease?.renewedAt };
  }

  /**
   * Resigns at once if active, so a standby takes over without waiting for the TTL. Waits
   * for a request in flight to end; never throws: a failed resign leaves it to the TTL.
   */
  stop(): Promise<void> {
    this.stopped ??= this.resign();
    return this.stopped;
  }

  private async resign(): Promise<void> {
    this.stopping = true;
    // Stop acting as active before letting go of the key, so the successor cannot overlap.
    if (this.verdict.iAmActive) this.report({ active: undefined, iAmActive: false });
    this.clearStepDown();
    this.watch?.close();
    this.nudge.wake();
    this.followPause.wake();
    await Promise.all(this.loops ?? []);
    const lease = this.lease;
    this.lease = undefined;
    if (lease === undefined) return;
    // Revoking deletes exactly the keys attached to the lease: the gateway key if, and only
    // if, it still hangs on it, atomically, in one request; another holder's key is untouched.
    await this.leases.revoke(lease.id).catch((err: unknown) => this.o.onError?.(err));
  }

  private evaluate(): ElectionAction {
    const action = decideElection(
      { me: this.o.node, candidate: this.candidate, holder: this.holder, lease: this.lease, now: this.timers.now() }, this.timing);
    if (this.stopping) return action;
    this.clearStepDown();
    // The step-down must not wait for the loop: a keep-alive to a silent etcd hangs until its deadline.
    if (action.do === 'renew') this.stepDownTimer = this.timers.setTimeout(() => this.onStepDownDue(), action.stepDownInMs);
    this.report(verdictOf(action, this.o.node));
    return action;
  }

  private onStepDownDue(): void {
    this.stepDownTimer = undefined;
    this.evaluate();
  }

  private clearStepDown(): void {
    if (this.stepDownTimer !== undefined) this.timers.clearTimeout(this.stepDownTimer);
    this.stepDownTimer = undefined;
  }

  private report(v: Verdict): void {
    if (v.active === this.verdict.active && v.iAmActive === this.verdict.iAmActive) return;
    this.verdict = v;
    try {
      this.o.onChange(v.active, v.iAmActive);
    } catch (err) {
      this.o.onError?.(err);
    }
  }

  /** etcd's word on the key at `revision`; anything older than what is known is dropped. */
  private observe(revision: string, holder: Holder | undefined): void {
    const rev = BigInt(revision);
    if (rev <= this.revision) return;
    this.revision = rev;
    this.holder = holder;
    if (this.stopping) return;
    this.evaluate();
    this.nudge.wake();
  }

  /** Candidates only: campaign while the key is missing, renew while holding it. */
  private async leaseLoop(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const action = this.evaluate();
      if (action.do === 'follow' || (action.do === 'renew' && action.inMs > 0)) {
        await this.nudge.wait(action.do === 'renew' ? action.inMs : IDLE_RECHECK_MS);
        continue;
      }
      try {
        if (action.do === 'campaign') await this.campaign();
        else await this.renew();
        attempt = 0;
      } catch (err) {
        if (this.stopping) break;
        if (isLeaseGone(err)) {
          this.leaseGone();
          continue;
        }
        if (!(err instanceof StoreUnavailableError)) this.o.onError?.(err);
        await this.nudge.wait(backoffDelay(attempt++, this.backoff));
      }
    }
  }

  private async campaign(): Promise<void> {
    if (!leaseUsable(this.lease, this.timers.now(), this.timing)) {
      const sentAt = this.timers.now();
      const id = await this.leases.grant(this.timing.ttlMs / 1000);
      this.lease = { id, renewedAt: sentAt };
    }
    const lease = this.lease!;
    // Through the store's retry: a reply lost after etcd applied the put is answered on
    // retry by the Else branch, with my name under my lease, and counts as won.
    const r = await this.o.store.txn({ compare: [missing(this.key)], success: [putWithLease(this.key, this.o.node, lease.id)], failure: [get(this.key)] });
    const kv = kvOf(r.responses[0]);
    this.observe(r.header.revision, r.succeeded ? { node: this.o.node, lease: lease.id } : kv ? { node: text(kv.value), lease: String(kv.lease) } : undefined);
  }

  private async renew(): Promise<void> {
    const lease = this.lease!;
    const sentAt = this.timers.now();
    const ttl = await this.leases.keepAliveOnce(lease.id);
    if (ttl <= 0) return this.leaseGone();
    this.lease = { id: lease.id, renewedAt: sentAt };
  }

  /** etcd no longer knows the lease: the key, if it hung on it, went with it. */
  private leaseGone(): void {
    const lost = this.lease;
    this.lease = undefined;
    if (lost && this.holder?.node === this.o.node && this.holder.lease === lost.id) this.holder = undefined;
  }

  /** Every node: a range read, then a watch from the revision after it; again after every break. */
  private async followLoop(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      try {
        const r = await this.o.store.range({ key: Buffer.from(this.key) });
        const kv = r.kvs[0];
        this.observe(r.header.revision, kv ? { node: text(kv.value), lease: String(kv.lease) } : undefined);
        if (this.stopping) break;
        this.watch = watchRange(this.o.store, {
          key: this.key, rangeEnd: `${this.key}\0`, startRevision: (BigInt(r.header.revision) + 1n).toString(),
        }, {
          // Only a watch that etcd accepted proves the way back: one refused after every read must still back off.
          onCreated: () => {
            attempt = 0;
          },
          onEvents: (events) => {
            for (const e of events) this.observe(e.modRevision, e.type === 'delete' ? undefined : this.holderOfPut(e.value));
          },
        });
        if (this.stopping) this.watch.close();
        await this.watch.ended;
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof WatchCompactedError) continue;
        if (!(err instanceof StoreUnavailableError)) this.o.onError?.(err);
        await this.followPause.wait(backoffDelay(attempt++, this.backoff));
      }
    }
  }

  // A watch event carries no lease. After my first read, only my own campaigns write my
  // name, each under the lease I hold while it is in flight, so a put of my name is under
  // my current lease. An older campaign's event is no newer than that campaign's reply,
  // which was observed before any later lease was granted, so `observe` drops it. (Were
  // that reply lost and the watch stalled for a whole TTL, the key would name me under a
  // lease I no longer renew: its expiry's delete event sets that right.)
  private holderOfPut(node: string): Holder {
    return { node, lease: node === this.o.node ? this.lease?.id : undefined };
  }
}
