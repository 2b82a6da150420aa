// When the watcher hands the peer set on: after a quiet spell, but never later than a
// maximum wait after the first unhanded change. Fifty nodes joining within the quiet
// spell of each other make one emission; a change every 50 ms forever still makes one
// emission a second instead of none.
import type { TimerHandle, Timers } from '../nat/timers.js';

export interface EmitWindow {
  quietMs: number;
  maxWaitMs: number;
}

/** Pure: milliseconds until the emission is due (0: now), given the first and last unemitted change. */
export function emitDelay(firstChangeAt: number, lastChangeAt: number, now: number, w: EmitWindow): number {
  return Math.max(0, Math.min(lastChangeAt + w.quietMs, firstChangeAt + w.maxWaitMs) - now);
}

export class EmitSchedule {
  private firstChangeAt: number | undefined;
  private lastChangeAt = 0;
  private timer: TimerHandle | undefined;

  constructor(private readonly timers: Timers, private readonly window: EmitWindow, private readonly emit: () => void) {}

  changed(): void {
    const now = this.timers.now();
    this.firstChangeAt ??= now;
    this.lastChangeAt = now;
    this.arm();
  }

  cancel(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.firstChangeAt = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    const delay = emitDelay(this.firstChangeAt!, this.lastChangeAt, this.timers.now(), this.window);
    this.timer = this.timers.setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.timer = undefined;
    if (this.firstChangeAt === undefined) return;
    if (emitDelay(this.firstChangeAt, this.lastChangeAt, this.timers.now(), this.window) > 0) return this.arm();
    this.firstChangeAt = undefined;
    this.emit();
  }
}
