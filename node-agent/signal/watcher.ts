// Follows every other node's record and hands the agent the whole peer set each time it
// changes. A range read gives the records and the revision they were read at; a watch
// from the next revision gives every change after it, so nothing falls between the two.
//
// When the watch breaks (etcd down, connection lost) the last peer set stays as it is:
// tunnels keep working on what was known. The watcher retries with backoff and resumes
// from the last revision it saw, which replays exactly what it missed, deletions
// included; when that history is gone (compacted) or etcd went back in time (restored
// from a backup) it reads the whole range again. Emissions go through EmitSchedule, so
// a burst of changes becomes one emission, and an emission that would not change the
// peer set (a peer re-publishing the same content after a restart) is not made.
import type { IRangeRequest, IRangeResponse } from 'etcd3';
import { StoreUnavailableError } from '../../lib/etcd/errors.js';
import { backoffDelay, type BackoffOptions } from '../../lib/etcd/retry.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { watchRange, WatchCompactedError, type RangeWatch, type WatchHandlers, type WatchRangeRequest } from '../../lib/etcd/watch.js';
import { systemTimers, type Timers } from '../nat/timers.js';
import { failed, succeeded, type ConnectionState } from './connection-state.js';
import { EmitSchedule } from './emit-schedule.js';
import { StoreRewoundError, type NodeRecordError } from './errors.js';
import { EMIT_MAX_WAIT_MS, EMIT_QUIET_MS, RETRY_INITIAL_MS, RETRY_MAX_MS } from './knobs.js';
import type { AgentKeys } from './keys.js';
import { fromSnapshot, judgeRecords, samePeers, withEvents, type Applied, type Entry } from './peer-set.js';
import type { NodeRecord } from './record.js';
import { Wakeable } from './wakeable.js';

export type PeerSet = ReadonlyMap<string, NodeRecord>;

export interface WatcherOptions {
  store: EtcdStore;
  keys: AgentKeys;
  /** This node: its own record is not a peer. */
  self: string;
  onPeers: (peers: PeerSet) => void;
  /** A record skipped because it is malformed or claims what its allocation does not give; the others are handled as usual. */
  onInvalid?: (err: NodeRecordError) => void;
  onState?: (state: ConnectionState) => void;
  /** Errors other than "unreachable", retried all the same. */
  onError?: (err: unknown) => void;
  timers?: Timers;
  now?: () => Date;
  backoff?: BackoffOptions;
  quietMs?: number;
  maxWaitMs?: number;
  /** Records per range read: a large cluster is read in pages of one revision. */
  pageSize?: number;
  /** Seams for tests; default to the store's. */
  range?: (request: IRangeRequest) => Promise<IRangeResponse>;
  watch?: (request: WatchRangeRequest, handlers: WatchHandlers) => RangeWatch;
}

export interface WatcherStatus {
  connection: ConnectionState;
  /** The last revision applied. */
  revision: string | undefined;
  /** Full range reads so far (the first, then one per compaction or rewind). */
  snapshots: number;
  emissions: number;
  peers: number;
  /** Keys whose current value was refused. */
  invalid: string[];
}

export class PeerWatcher {
  private readonly timers: Timers;
  private readonly now: () => Date;
  private readonly backoff: BackoffOptions;
  private readonly pause: Wakeable;
  private readonly schedule: EmitSchedule;
  private readonly range: (request: IRangeRequest) => Promise<IRangeResponse>;
  private readonly watch: (request: WatchRangeRequest, handlers: WatchHandlers) => RangeWatch;
  private entries = new Map<string, Entry>();
  /** Records refused at the last emission for disagreeing with their allocation, by key. */
  private refused = new Map<string, NodeRecordError>();
  private revision: string | undefined;
  private emitted: PeerSet | undefined;
  private connection: ConnectionState;
  private current: RangeWatch | undefined;
  private attempt = 0;
  private snapshots = 0;
  private emissions = 0;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: WatcherOptions) {
    this.timers = options.timers ?? systemTimers;
    this.now = options.now ?? (() => new Date());
    this.backoff = options.backoff ?? { initialMs: RETRY_INITIAL_MS, maxMs: RETRY_MAX_MS, random: Math.random };
    this.pause = new Wakeable(this.timers);
    this.schedule = new EmitSchedule(this.timers,
      { quietMs: options.quietMs ?? EMIT_QUIET_MS, maxWaitMs: options.maxWaitMs ?? EMIT_MAX_WAIT_MS }, () => this.emit());
    this.range = options.range ?? ((r) => options.store.range(r));
    this.watch = options.watch ?? ((r, h) => watchRange(options.store, r, h));
    this.connection = { state: 'starting', since: this.now() };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** The peer set last handed on (undefined before the first). */
  peers(): PeerSet | undefined {
    return this.emitted;
  }

  status(): WatcherStatus {
    return {
      connection: this.connection,
      revision: this.revision,
      snapshots: this.snapshots,
      emissions: this.emissions,
      peers: this.emitted?.size ?? 0,
      invalid: [...[...this.entries].filter(([, e]) => 'error' in e).map(([k]) => k), ...this.refused.keys()].sort(),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.current?.close();
    this.pause.wake();
    this.schedule.cancel();
    await this.loop;
    this.setConnection({ state: 'stopped', since: this.now() });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (this.revision === undefined) await this.snapshot();
        await this.follow(this.revision!);
      } catch (err) {
        if (this.stopping) break;
        if (err instanceof WatchCompactedError || err instanceof StoreRewoundError) {
          this.options.onError?.(err);
          this.revision = undefined;
          continue;
        }
        if (!(err instanceof StoreUnavailableError)) this.options.onError?.(err);
        this.setConnection(failed(this.connection, this.now(), err));
        await this.pause.wait(backoffDelay(this.attempt++, this.backoff));
      }
    }
  }

  private async snapshot(): Promise<void> {
    const { dir, dirEnd } = this.options.keys;
    const kvs: { key: string; value: string }[] = [];
    let revision: string | undefined;
    let from = dir;
    for (;;) {
      const r = await this.range({
        key: Buffer.from(from), range_end: Buffer.from(dirEnd), limit: this.options.pageSize ?? 500,
        ...(revision ? { revision } : {}),
      });
      revision ??= r.header.revision;
      for (const kv of r.kvs) kvs.push({ key: kv.key.toString('utf8'), value: kv.value.toString('utf8') });
      if (!r.more || r.kvs.length === 0) break;
      from = `${kvs.at(-1)!.key}\0`;
    }
    if (this.stopping) return;
    this.snapshots++;
    this.revision = revision;
    this.attempt = 0;
    this.setConnection(succeeded(this.connection, this.now()));
    this.apply(fromSnapshot(this.options.keys, this.options.self, kvs, this.entries));
  }

  private async follow(revision: string): Promise<void> {
    if (this.stopping) return;
    const { dir, dirEnd } = this.options.keys;
    this.current = this.watch({ key: dir, rangeEnd: dirEnd, startRevision: (BigInt(revision) + 1n).toString() }, {
      onCreated: (current) => {
        if (BigInt(current) < BigInt(revision)) throw new StoreRewoundError(current, revision);
        this.attempt = 0;
        this.setConnection(succeeded(this.connection, this.now()));
      },
      onEvents: (events) => {
        this.revision = events.at(-1)!.modRevision;
        this.apply(withEvents(this.options.keys, this.options.self, events, this.entries));
      },
    });
    if (this.stopping) this.current.close();
    await this.current.ended;
  }

  private apply({ entries, invalid }: Applied): void {
    this.entries = entries;
    for (const err of invalid) this.options.onInvalid?.(err);
    this.schedule.changed();
  }

  private emit(): void {
    const { peers, refused } = judgeRecords(this.options.keys, this.entries);
    // Reported once per refusal, not at every emission it persists through.
    for (const [key, err] of refused) if (this.refused.get(key)?.message !== err.message) this.options.onInvalid?.(err);
    this.refused = refused;
    if (this.emitted && samePeers(this.emitted, peers)) return;
    this.emitted = peers;
    this.emissions++;
    this.options.onPeers(peers);
  }

  private setConnection(next: ConnectionState): void {
    if (next === this.connection) return;
    this.connection = next;
    this.options.onState?.(next);
  }
}
