// The clock every STUN/TURN timer goes through, so retransmission and refresh logic is
// tested with a fake clock instead of sleeping.
import { performance } from 'node:perf_hooks';

export type TimerHandle = unknown;

export interface Timers {
  /** Monotonic milliseconds: only differences mean anything. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
