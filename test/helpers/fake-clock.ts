// A clock for retry and backoff code: time moves only when the code under test sleeps;
// `onSleep` acts in the world during the n-th sleep (a server comes back, a fault clears).
import type { Clock } from '../../lib/etcd/retry.js';

export function fakeClock(onSleep: (n: number) => void | Promise<void> = () => {}, start = 0): Clock & { sleeps: number[] } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
      await onSleep(sleeps.length);
    },
  };
}
