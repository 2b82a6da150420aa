import { describe, expect, it } from 'vitest';
import { emitDelay, EmitSchedule } from '../../../../node-agent/signal/emit-schedule.js';
import { FakeTimers } from '../nat/fake-net.js';

const W = { quietMs: 100, maxWaitMs: 1_000 };

describe('emitDelay', () => {
  it('waits for a quiet spell after the last change', () => {
    expect(emitDelay(0, 0, 0, W)).toBe(100);
    expect(emitDelay(0, 60, 90, W)).toBe(70);
    expect(emitDelay(0, 60, 160, W)).toBe(0);
  });

  it('never waits past maxWait after the first change', () => {
    expect(emitDelay(0, 950, 960, W)).toBe(40);
    expect(emitDelay(0, 1_200, 1_200, W)).toBe(0);
  });
});

describe('EmitSchedule', () => {
  const run = () => {
    const timers = new FakeTimers();
    const at: number[] = [];
    return { timers, at, schedule: new EmitSchedule(timers, W, () => at.push(timers.now())) };
  };

  it('makes one emission of a burst of 50 changes', async () => {
    const { timers, at, schedule } = run();
    for (let i = 0; i < 50; i++) {
      schedule.changed();
      await timers.advance(5);
    }
    await timers.advance(1_000);
    expect(at).toEqual([345]);
  });

  it('emits at least once per maxWait under a steady stream of changes', async () => {
    const { timers, at, schedule } = run();
    for (let i = 0; i < 60; i++) {
      schedule.changed();
      await timers.advance(50);
    }
    await timers.advance(1_000);
    expect(at).toEqual([1_000, 2_000, 3_000]);
  });

  it('emits nothing after cancel()', async () => {
    const { timers, at, schedule } = run();
    schedule.changed();
    schedule.cancel();
    await timers.advance(2_000);
    expect(at).toEqual([]);
    expect(timers.pending).toBe(0);
  });
});
