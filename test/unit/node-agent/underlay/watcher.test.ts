// The watcher on a fake clock with a scripted monitor and a scripted underlay: bursts of
// events make one read, a change is told once, no change is told never, and a monitor
// that dies is started again and the node read again.
import { describe, expect, it } from 'vitest';
import { RESTART_MS, SETTLE_MS, UnderlayWatcher, type MonitorSpawner } from '../../../../node-agent/underlay/watcher.js';
import type { UnderlayView } from '../../../../node-agent/underlay/view.js';
import { FakeTimers } from '../nat/fake-net.js';

function setup() {
  const timers = new FakeTimers();
  let view: UnderlayView = { addresses: ['eth0 10.1.0.2/24 up'], routes: ['default via 10.1.0.1 dev eth0 metric 0'] };
  let reads = 0;
  const monitors: { output: () => void; exit: (why: string) => void; stopped: boolean }[] = [];
  const monitor: MonitorSpawner = (output, exit) => {
    const m = { output, exit, stopped: false };
    monitors.push(m);
    return { stop: () => { m.stopped = true; } };
  };
  const changes: { added: string[]; removed: string[] }[] = [];
  const errors: string[] = [];
  const watcher = new UnderlayWatcher({
    read: async () => { reads++; return view; },
    onChange: (c) => changes.push(c),
    onError: (e) => errors.push(String(e)),
    monitor, timers,
  });
  return { timers, watcher, monitors, changes, errors, reads: () => reads, set: (v: UnderlayView) => (view = v) };
}

describe('UnderlayWatcher', () => {
  it('reads once per burst of events and tells a change once', async () => {
    const t = setup();
    await t.watcher.start();
    expect(t.reads()).toBe(1);
    t.set({ addresses: ['eth0 10.1.0.3/24 up'], routes: ['default via 10.1.0.1 dev eth0 metric 0'] });
    for (let i = 0; i < 5; i++) t.monitors[0]!.output();
    await t.timers.advance(SETTLE_MS);
    expect(t.reads()).toBe(2);
    expect(t.changes).toEqual([{ added: ['eth0 10.1.0.3/24 up'], removed: ['eth0 10.1.0.2/24 up'] }]);
    // Events that change nothing of the underlay (a pod's veth) are read and not told.
    t.monitors[0]!.output();
    await t.timers.advance(SETTLE_MS);
    expect(t.reads()).toBe(3);
    expect(t.changes).toHaveLength(1);
  });

  it('starts a monitor that died again, and reads what changed meanwhile', async () => {
    const t = setup();
    await t.watcher.start();
    t.monitors[0]!.exit('ip monitor exited (1)');
    expect(t.errors).toHaveLength(1);
    t.set({ addresses: ['eth0 10.1.0.2/24 up'], routes: ['default via 10.1.0.9 dev eth0 metric 0'] });
    await t.timers.advance(RESTART_MS + SETTLE_MS);
    expect(t.monitors).toHaveLength(2);
    expect(t.changes).toEqual([{ added: ['default via 10.1.0.9 dev eth0 metric 0'], removed: ['default via 10.1.0.1 dev eth0 metric 0'] }]);
  });

  it('stops its monitor and starts no other', async () => {
    const t = setup();
    await t.watcher.start();
    await t.watcher.stop();
    expect(t.monitors[0]!.stopped).toBe(true);
    t.monitors[0]!.exit('killed');
    await t.timers.advance(RESTART_MS * 2);
    expect(t.monitors).toHaveLength(1);
    expect(t.errors).toEqual([]);
  });
});
