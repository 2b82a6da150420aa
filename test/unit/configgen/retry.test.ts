import { describe, expect, it } from 'vitest';
import { backoffDelay, withRetry } from '../../../lib/etcd/retry.js';
import { fakeClock as clock } from '../../helpers/fake-clock.js';

const fakeClock = (): ReturnType<typeof clock> => clock(undefined, 1_000_000);

class Down extends Error {}
const backoff = { initialMs: 100, maxMs: 5_000, random: () => 1 };

describe('backoffDelay', () => {
  it('doubles up to the cap, half of each wait being random', () => {
    expect([0, 1, 2, 3, 6, 7, 50].map((a) => backoffDelay(a, backoff))).toEqual([100, 200, 400, 800, 5000, 5000, 5000]);
    expect(backoffDelay(3, { ...backoff, random: () => 0 })).toBe(400);
  });
});

describe('withRetry', () => {
  it('retries retryable failures with growing waits until the operation succeeds', async () => {
    const clock = fakeClock();
    let calls = 0;
    const retries: number[] = [];
    const result = await withRetry(async () => {
      if (++calls < 4) throw new Down('refused');
      return 'ok';
    }, { timeoutMs: 60_000, clock, backoff, isRetryable: (e) => e instanceof Down, giveUp: () => new Error('gave up'), onRetry: (_, n) => retries.push(n) });
    expect(result).toBe('ok');
    expect(clock.sleeps).toEqual([100, 200, 400]);
    expect(retries).toEqual([1, 2, 3]);
  });

  it('gives up once the time budget is spent, the last wait cut to fit it', async () => {
    const clock = fakeClock();
    let calls = 0;
    const err = await withRetry(async () => {
      calls++;
      throw new Down('refused');
    }, {
      timeoutMs: 10_000, clock, backoff, isRetryable: (e) => e instanceof Down,
      giveUp: (last, elapsed, attempts) => new Error(`after ${elapsed} ms and ${attempts} attempts: ${(last as Error).message}`),
    }).catch((e: unknown) => e as Error);
    expect(clock.sleeps).toEqual([100, 200, 400, 800, 1600, 3200, 3700]);
    expect(clock.sleeps.reduce((a, b) => a + b)).toBe(10_000);
    expect(err.message).toBe('after 10000 ms and 8 attempts: refused');
    expect(calls).toBe(8);
  });

  it('passes what is left of the budget to the operation, for its deadline', async () => {
    const clock = fakeClock();
    const budgets: number[] = [];
    await withRetry(async (remaining) => {
      budgets.push(remaining);
      if (budgets.length < 3) throw new Down('x');
    }, { timeoutMs: 1_000, clock, backoff, isRetryable: () => true, giveUp: () => new Error('no') });
    expect(budgets).toEqual([1000, 900, 700]);
  });

  it('rethrows other failures at once', async () => {
    const clock = fakeClock();
    await expect(withRetry(async () => {
      throw new TypeError('bug');
    }, { timeoutMs: 1_000, clock, backoff, isRetryable: (e) => e instanceof Down, giveUp: () => new Error('no') })).rejects.toThrow(TypeError);
    expect(clock.sleeps).toEqual([]);
  });
});
