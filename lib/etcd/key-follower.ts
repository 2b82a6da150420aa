// Follows one key: its value now and after every change, delivered as it is (undefined once
// deleted). A read, then a watch from the read's next revision, so that nothing between the
// two is missed; when the watch breaks (etcd down, history compacted), read and watch again
// after a backoff. For a key that changes rarely and whose latest value is all that matters.
import { errorMessage } from '../errors.js';
import { get, kvOf, text } from './ops.js';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './retry.js';
import type { EtcdStore } from './store.js';
import { watchRange, type RangeWatch } from './watch.js';

export interface KeyFollowerOptions {
  store: EtcdStore;
  key: string;
  onValue(value: string | undefined): void;
  onError(message: string): void;
  backoff?: BackoffOptions;
}

export class KeyFollower {
  private watch: RangeWatch | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;

  constructor(private readonly o: KeyFollowerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** At once: a read under way (retrying while etcd is unreachable) ends when the store closes. */
  stop(): void {
    this.stopped = true;
    this.watch?.close();
    this.wakeSleep?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const r = await this.o.store.txn({ compare: [], success: [get(this.o.key)], failure: [] });
        if (this.stopped) return;
        const kv = kvOf(r.responses[0]);
        this.o.onValue(kv ? text(kv.value) : undefined);
        failures = 0;
        this.watch = watchRange(this.o.store, { key: this.o.key, rangeEnd: '', startRevision: String(BigInt(r.header.revision) + 1n) }, {
          onCreated: () => undefined,
          onEvents: (events) => {
            const last = events.at(-1)!;
            this.o.onValue(last.type === 'put' ? last.value : undefined);
          },
        });
        await this.watch.ended;
      } catch (err) {
        if (this.stopped) return;
        this.o.onError(`following ${this.o.key}: ${errorMessage(err)}`);
      }
      this.watch = undefined;
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, backoffDelay(failures++, this.o.backoff ?? DEFAULT_BACKOFF));
        this.wakeSleep = () => {
          clearTimeout(this.timer);
          resolve();
        };
      });
    }
  }
}
