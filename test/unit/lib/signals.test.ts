import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { stopSignals, type StopSignal } from '../../../lib/signals.js';

function setUp() {
  const source = new EventEmitter();
  const exits: number[] = [];
  const forced: [StopSignal, number][] = [];
  const stop = stopSignals(source, { exit: (s) => exits.push(s), onForce: (sig, s) => forced.push([sig, s]) });
  return { source, exits, forced, stop };
}

describe('stopSignals', () => {
  it('resolves with the first signal and forces nothing', async () => {
    const t = setUp();
    t.source.emit('SIGINT');
    await expect(t.stop).resolves.toBe('SIGINT');
    expect(t.exits).toEqual([]);
  });

  it('forces the exit on a second signal, with 128 + its number', async () => {
    const t = setUp();
    t.source.emit('SIGTERM');
    await t.stop;
    t.source.emit('SIGTERM');
    t.source.emit('SIGINT');
    expect(t.exits).toEqual([143, 130]);
    expect(t.forced).toEqual([['SIGTERM', 143], ['SIGINT', 130]]);
  });

  it('without force options, resolves with the first signal and ignores later ones', async () => {
    const source = new EventEmitter();
    const stop = stopSignals(source);
    source.emit('SIGTERM');
    await expect(stop).resolves.toBe('SIGTERM');
    expect(() => source.emit('SIGINT')).not.toThrow();
    expect(source.listenerCount('SIGINT')).toBe(1);
  });

  it('keeps its listeners installed after the first signal (another listener never finds itself alone)', async () => {
    const t = setUp();
    t.source.emit('SIGTERM');
    await t.stop;
    expect(t.source.listenerCount('SIGTERM')).toBe(1);
    expect(t.source.listenerCount('SIGINT')).toBe(1);
  });
});
