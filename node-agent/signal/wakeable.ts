// A wait on the injected timers that another task can cut short: the publisher idles
// until its next keep-alive unless a record change or stop() wakes it.
import type { TimerHandle, Timers } from '../nat/timers.js';

export class Wakeable {
  private resolve: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  private woken = false;

  constructor(private readonly timers: Timers) {}

  /** Resolves after `ms`, or at once if wake() was called since the last wait ended. */
  wait(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = this.timers.setTimeout(() => this.end(), ms);
    });
  }

  wake(): void {
    if (this.resolve) this.end();
    else this.woken = true;
  }

  private end(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    const resolve = this.resolve;
    this.resolve = undefined;
    this.timer = undefined;
    this.woken = false;
    resolve?.();
  }
}
