// Bounded retry with exponential backoff and jitter. Time is injected (clock and sleep)
// so that the whole schedule, including giving up, is unit-tested without waiting.

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Uniform in [0, 1): spreads retries of many clients so they do not arrive together. */
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5_000, random: Math.random };

/** Pure: the wait before retry number `attempt` (0-based), "equal jitter": half fixed, half random. */
export function backoffDelay(attempt: number, { initialMs, maxMs, random }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export interface RetryOptions {
  /** Total time allowed from the first failure; the last wait is cut to fit it. */
  timeoutMs: number;
  clock?: Clock;
  backoff?: BackoffOptions;
  isRetryable: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Turns the last error into the one thrown when time is up. */
  giveUp: (err: unknown, elapsedMs: number, attempts: number) => Error;
}

export async function withRetry<T>(op: (remainingMs: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? realClock;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const start = clock.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(Math.max(0, options.timeoutMs - (clock.now() - start)));
    } catch (err) {
      if (!options.isRetryable(err)) throw err;
      const elapsed = clock.now() - start;
      const left = options.timeoutMs - elapsed;
      if (left <= 0) throw options.giveUp(err, elapsed, attempt + 1);
      const delay = Math.min(left, backoffDelay(attempt, backoff));
      options.onRetry?.(err, attempt + 1, delay);
      await clock.sleep(delay);
    }
  }
}
