// Keeps this node's Node object true while the agent runs: a loop that, every TICK_MS and
// whenever the agent pokes it, computes the desired Node from the agent's state, and
// when that changed (or RESYNC_MS passed) reads the Node and sends the patches
// node-plan.ts decides. A look that finds nothing new costs no API call.
//
// API errors never reach the agent: one log line per failed round, a retry after a
// bounded backoff, and the state in status() for `warren-agent status`.
import { errorMessage } from '../../lib/errors.js';
import { backoffDelay, type BackoffOptions } from '../../lib/etcd/retry.js';
import type { Log } from '../agent.js';
import { systemTimers, type Timers } from '../nat/timers.js';
import { Wakeable } from '../signal/wakeable.js';
import type { NodeApi } from './api.js';
import { RESYNC_MS, RETRY_INITIAL_MS, RETRY_MAX_MS, TICK_MS } from './knobs.js';
import { planNodePatches, type DesiredNode } from './node-plan.js';

export interface KubeStatus {
  node: string;
  server: string;
  /** starting: no round finished yet; ok: the last round succeeded; error: it failed (retried after a backoff). */
  state: 'starting' | 'ok' | 'error';
  /** NetworkUnavailable as the last round left it (written, found right, or found while the agent starts). */
  condition?: { status: string; reason: string };
  /** The last round that succeeded, whether it had to patch or not. */
  lastSyncAt?: string;
  /** The last patch the API server accepted, and what it changed. */
  lastPatchAt?: string;
  lastPatch?: string[];
  lastError?: string;
  /** Failed rounds since the last that succeeded. */
  failures: number;
  /** Set while the Node holds a pod CIDR other than node.json's. */
  podCIDRConflict?: string;
}

export interface NodePublisherOptions {
  api: NodeApi;
  /** The Node's name: the agent's nodeName. */
  node: string;
  desired: (now: Date) => DesiredNode;
  log: Log;
  timers?: Timers;
  now?: () => Date;
  backoff?: BackoffOptions;
}

/** Pure: whether the Node must be read (and maybe patched) now. */
export function roundDue(last: { key: string; at: number; ok: boolean } | undefined, key: string, now: number, resyncMs = RESYNC_MS): boolean {
  return !last || !last.ok || last.key !== key || now - last.at >= resyncMs;
}

export class NodePublisher {
  private readonly timers: Timers;
  private readonly now: () => Date;
  private readonly backoff: BackoffOptions;
  private readonly idle: Wakeable;
  private readonly pause: Wakeable;
  private readonly state: KubeStatus;
  private last: { key: string; at: number; ok: boolean } | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly o: NodePublisherOptions) {
    this.timers = o.timers ?? systemTimers;
    this.now = o.now ?? (() => new Date());
    this.backoff = o.backoff ?? { initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS, random: Math.random };
    this.idle = new Wakeable(this.timers);
    this.pause = new Wakeable(this.timers);
    this.state = { node: o.node, server: o.api.server, state: 'starting', failures: 0 };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** The agent's state changed: look now rather than at the next tick (a backoff still holds). */
  poke(): void {
    this.idle.wake();
  }

  /** Does not wait for a request under way (REQUEST_TIMEOUT_MS bounds it): the Node stays as last written. */
  stop(): void {
    this.stopping = true;
    this.idle.wake();
    this.pause.wake();
  }

  /** For tests: resolves when the loop has ended. */
  stopped(): Promise<void> {
    return this.loop ?? Promise.resolve();
  }

  status(): KubeStatus {
    return { ...this.state };
  }

  /** One round now, for an agent about to exit (node.json missing): a failure is logged, never thrown. */
  async publishOnce(desired: DesiredNode): Promise<void> {
    try {
      await this.round(desired);
    } catch (err) {
      this.failed(err);
    }
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const desired = this.o.desired(this.now());
      const key = JSON.stringify(desired);
      if (roundDue(this.last, key, this.timers.now())) {
        try {
          await this.round(desired);
          this.last = { key, at: this.timers.now(), ok: true };
          attempt = 0;
        } catch (err) {
          if (this.stopping) break;
          this.last = { key, at: this.timers.now(), ok: false };
          this.failed(err);
          await this.pause.wait(backoffDelay(attempt++, this.backoff));
          continue;
        }
      }
      await this.idle.wait(TICK_MS);
    }
  }

  private async round(desired: DesiredNode): Promise<void> {
    const current = await this.o.api.read(this.o.node);
    const plan = planNodePatches(desired, current, this.now());
    const conflict = plan.podCIDRConflict && `the Node has spec.podCIDR ${plan.podCIDRConflict.node}, node.json says ${plan.podCIDRConflict.ours}`;
    if (conflict && conflict !== this.state.podCIDRConflict) {
      this.o.log('warn', `${conflict}: left as it is (a Node's pod CIDR cannot change); Warren routes ${plan.podCIDRConflict!.ours} to this node`, { node: this.o.node });
    }
    this.state.podCIDRConflict = conflict;
    for (const p of plan.patches) {
      await this.o.api.patch(this.o.node, p);
      this.state.lastPatchAt = this.now().toISOString();
      this.state.lastPatch = p.changes;
      this.o.log('info', 'Node patched', { node: this.o.node, target: p.target, changes: p.changes });
    }
    if (this.state.state === 'error') this.o.log('info', 'the Kubernetes API answers again', { node: this.o.node, after: this.state.failures });
    const c = desired.condition;
    const found = current.networkCondition;
    this.state.condition = c ? { status: c.unavailable ? 'True' : 'False', reason: c.reason } : found && { status: found.status, reason: found.reason ?? '' };
    Object.assign(this.state, { state: 'ok', lastSyncAt: this.now().toISOString(), lastError: undefined, failures: 0 });
  }

  private failed(err: unknown): void {
    Object.assign(this.state, { state: 'error', lastError: errorMessage(err), failures: this.state.failures + 1 });
    this.o.log('warn', 'keeping the Node object true', { node: this.o.node, error: errorMessage(err), failures: this.state.failures });
  }
}
