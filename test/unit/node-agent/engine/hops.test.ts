// The hop count on a simulated path: a request with TTL t reaches the server only when t
// covers every router on the way.
import { describe, expect, it } from 'vitest';
import { HopsUnknownError } from '../../../../node-agent/engine/errors.js';
import { hopsTo, punchTtlFor, type HopProber } from '../../../../node-agent/engine/hops.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { bindingSuccess, decodeStun, encodeStun } from '../../../../node-agent/nat/stun.js';
import { FakePort, FakeTimers } from '../nat/fake-net.js';

const server: Endpoint = { address: '192.0.2.10', port: 3478 };

/** A prober whose datagrams reach `server` with TTL >= hops; answers come back `rttMs` later, the smallest TTL's last when `reorder`. */
function path(timers: FakeTimers, hops: number | undefined, o: { rttMs?: number; reorder?: boolean } = {}) {
  const port = new FakePort(timers);
  const ttls: number[] = [];
  const prober: HopProber = {
    port,
    async punch(to, ttl, payload) {
      ttls.push(ttl);
      if (hops === undefined || ttl < hops || to.address !== server.address) return;
      const reply = encodeStun(bindingSuccess(decodeStun(payload), { address: '198.51.100.6', port: 51820 }));
      const delay = (o.rttMs ?? 5) + (o.reorder && ttl === hops ? 3 : 0);
      timers.setTimeout(() => port.deliver(reply, server), delay);
    },
  };
  return { prober, ttls, port };
}

describe('hopsTo', () => {
  it.each([2, 3, 4, 8])('finds a server %i hops away in one batch of TTLs 1..8', async (hops) => {
    const timers = new FakeTimers();
    const { prober, ttls } = path(timers, hops);
    const found = hopsTo(prober, server, { timers });
    await timers.advance(100);
    expect(await found).toBe(hops);
    expect(ttls).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('waits after the first answer for a smaller TTL answered later', async () => {
    const timers = new FakeTimers();
    const { prober } = path(timers, 3, { rttMs: 10, reorder: true });
    const found = hopsTo(prober, server, { timers });
    await timers.advance(100);
    expect(await found).toBe(3);
  });

  it('ignores answers that are not for its transactions or come from elsewhere', async () => {
    const timers = new FakeTimers();
    const { prober, port } = path(timers, undefined);
    const found = hopsTo(prober, server, { timers, attempts: 1, waitMs: 200 });
    const stray = encodeStun(bindingSuccess({ method: 1, cls: 'request', transactionId: Buffer.alloc(12), attributes: [] }, server));
    port.deliver(stray, server);
    port.deliver(Buffer.from('not stun'), server);
    const rejected = expect(found).rejects.toBeInstanceOf(HopsUnknownError);
    await timers.advance(300);
    await rejected;
  });

  it('sends the batch again when nothing answers, and gives up after the last attempt', async () => {
    const timers = new FakeTimers();
    const { prober, ttls } = path(timers, 20);
    const found = hopsTo(prober, server, { timers, attempts: 2, waitMs: 500 });
    const rejected = expect(found).rejects.toMatchObject({ code: 'HOPS_UNKNOWN' });
    await timers.advance(1000);
    await rejected;
    expect(ttls).toHaveLength(16);
  });
});

describe('punchTtlFor', () => {
  it('is one less than the hop count, within [2, 8]', () => {
    expect([1, 2, 3, 4, 5, 9, 12].map(punchTtlFor)).toEqual([2, 2, 2, 3, 4, 8, 8]);
  });
});
