// Two hosts behind symmetric NATs (where hole punching cannot work) talk through their
// relays on a real coturn: Send/Data indications first, then ChannelData, then deallocate.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { performance } from 'node:perf_hooks';
import { useNatLab, type NsWorker, type Site } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import type { Datagram, Relayed } from './host-worker.js';

const WORKER = fileURLToPath(new URL('./host-worker.ts', import.meta.url));

interface Peer {
  site: Site;
  w: NsWorker;
  port: number;
  relayed: Endpoint;
}

describe('TURN client through coturn', () => {
  const lab = useNatLab();

  async function allocate(w: NsWorker, port: number): Promise<{ relayed: Endpoint; mapped?: Endpoint; ms: number }> {
    const { server, username, password } = lab().turn;
    return w.call('turnAllocate', port, server, username, password);
  }

  async function peer(): Promise<Peer> {
    const site = await lab().addSite('symmetric');
    const w = await lab().startWorker(site.host, WORKER);
    const port = await w.call<number>('open');
    const { relayed, mapped, ms } = await allocate(w, port);
    expect(mapped?.address).toBe(site.publicAddress);
    console.log(`allocation for ${site.host.name}: relay ${relayed.address}:${relayed.port} in ${ms.toFixed(1)} ms`);
    return { site, w, port, relayed };
  }

  it('relays both ways as Send/Data indications and as ChannelData, and deallocates on close', async () => {
    const a = await peer();
    const b = await peer();
    await a.w.call('turnPermission', a.port, [b.relayed]);
    await b.w.call('turnPermission', b.port, [a.relayed]);

    await a.w.call('turnSend', a.port, b.relayed, 'a to b by indication', 'indication');
    expect(await b.w.call<Relayed>('turnNext', b.port)).toEqual({ peer: a.relayed, text: 'a to b by indication', via: 'indication' });
    await b.w.call('turnSend', b.port, a.relayed, 'b to a by indication', 'indication');
    expect(await a.w.call<Relayed>('turnNext', a.port)).toEqual({ peer: b.relayed, text: 'b to a by indication', via: 'indication' });

    expect(await a.w.call<number>('turnBind', a.port, b.relayed)).toBe(0x4000);
    expect(await b.w.call<number>('turnBind', b.port, a.relayed)).toBe(0x4000);
    await a.w.call('turnSend', a.port, b.relayed, 'a to b by channel', 'channel');
    expect(await b.w.call<Relayed>('turnNext', b.port)).toEqual({ peer: a.relayed, text: 'a to b by channel', via: 'channel' });
    await b.w.call('turnSend', b.port, a.relayed, 'b to a by channel', 'channel');
    expect(await a.w.call<Relayed>('turnNext', a.port)).toEqual({ peer: b.relayed, text: 'b to a by channel', via: 'channel' });

    // While an allocation lives, the server refuses a second one on the same 5-tuple (437).
    // After close it accepts one again: the first was really deleted. coturn frees the
    // 5-tuple on its next one-second timer tick, not at once, hence the polling.
    const mismatch = { code: 'STUN_ERROR_RESPONSE', errorCode: 437 };
    await expect(allocate(a.w, a.port)).rejects.toMatchObject(mismatch);
    await a.w.call('turnClose', a.port);
    await b.w.call('turnClose', b.port);
    const closedAt = performance.now();
    let again: { relayed: Endpoint } | undefined;
    await waitFor('coturn to accept a new allocation on the closed 5-tuple', async () => {
      again = await allocate(a.w, a.port).catch((err: unknown) => {
        if ((err as { errorCode?: number }).errorCode === 437) return undefined;
        throw err;
      });
      return again !== undefined;
    }, 10_000, 100);
    console.log(`5-tuple free again ${(performance.now() - closedAt).toFixed(0)} ms after close`);
    expect(again?.relayed.address).toMatch(/^192\.0\.2\.1[01]$/);
    await a.w.call('turnClose', a.port);
  });

  it('relays to and from a peer that is not on a relay (a public host speaking plain UDP)', async () => {
    const a = await peer();
    const site = await lab().addSite('public');
    const w = await lab().startWorker(site.host, WORKER);
    const port = await w.call<number>('open');
    const direct = { address: site.hostAddress, port };
    await a.w.call('turnPermission', a.port, [direct]);
    await a.w.call('turnSend', a.port, direct, 'to a plain peer', 'indication');
    expect(await w.call<Datagram>('next', port)).toEqual({ from: a.relayed, text: 'to a plain peer' });
    await w.call('send', port, a.relayed, 'plain reply');
    expect(await a.w.call<Relayed>('turnNext', a.port)).toEqual({ peer: direct, text: 'plain reply', via: 'indication' });
    await a.w.call('turnClose', a.port);
  });
});
