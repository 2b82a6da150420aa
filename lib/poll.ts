// Waiting for a daemon to reach a state: poll a cheap probe, never sleep a fixed time.
import { setTimeout as delay } from 'node:timers/promises';

/** True as soon as `probe` is, false once `timeoutMs` passed without it. */
export async function pollUntil(probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= deadline) return false;
    await delay(everyMs);
  }
}
