// The two facts of TESTBED.md, shown with real packets. A bare Linux masquerade router
// that accepts unsolicited input records a peer's early datagram in conntrack, and the
// inside host's later datagram to that peer then leaves from another public port. A first
// probe with a small TTL opens the sender's own mapping and dies in the internet, so the
// far router records nothing and both directions meet on the ports STUN reported.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BindingProbe } from '../../../../node-agent/nat/stun-client.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { conntrackUdp, droppedUnsolicited, useNatLab, type NsWorker, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import type { Datagram } from './host-worker.js';

const WORKER = fileURLToPath(new URL('./host-worker.ts', import.meta.url));

interface Host {
  site: Site;
  w: NsWorker;
  port: number;
  /** The public mapping coturn saw for `port`. */
  mapped: Endpoint;
}

describe('conntrack trap on Linux NAT routers', () => {
  const lab = useNatLab();

  async function host(kind: SiteKind): Promise<Host> {
    const site = await lab().addSite(kind);
    const w = await lab().startWorker(site.host, WORKER);
    const port = await w.call<number>('open');
    const { mapped } = await w.call<BindingProbe>('stun', port, lab().stunServers[0]);
    return { site, w, port, mapped };
  }

  /**
   * An outsider's datagram reaches `inside`'s router first (`arrived` says when it has);
   * then the inside host sends to the outsider, who reports where it came from.
   */
  async function outsiderFirst(inside: Host, outsider: Host, arrived: () => Promise<boolean>): Promise<Datagram> {
    await outsider.w.call('send', outsider.port, inside.mapped, 'early');
    await waitFor('the early datagram to reach the inside router', arrived);
    await inside.w.call('send', inside.port, outsider.mapped, 'from inside');
    return outsider.w.call<Datagram>('next', outsider.port);
  }

  it('bare masquerade (kind 4): a datagram from outside arriving first moves the inside host\'s later mapping to another port', async () => {
    const inside = await host('masquerade');
    const outsider = await host('public');
    expect(inside.mapped.port).toBe(inside.port);
    const router = inside.site.routers[0]!;
    const got = await outsiderFirst(inside, outsider, async () =>
      (await conntrackUdp(router, { src: outsider.site.publicAddress, dst: inside.mapped.address, dport: inside.mapped.port })).length > 0);
    expect(got.text).toBe('from inside');
    expect(got.from.address).toBe(inside.site.publicAddress);
    expect(got.from.port).not.toBe(inside.mapped.port);
    console.log(`kind 4 trap: STUN said ${inside.mapped.port}, the outsider then saw ${got.from.port}`);
  });

  it('home router (kind 3): the early datagram is dropped, recorded nowhere, and the mapping keeps its port', async () => {
    const inside = await host('home-router');
    const outsider = await host('public');
    const router = inside.site.routers[0]!;
    const dropsBefore = await droppedUnsolicited(router);
    const got = await outsiderFirst(inside, outsider, async () => (await droppedUnsolicited(router)) > dropsBefore);
    expect(got).toEqual({ from: inside.mapped, text: 'from inside' });
    expect(await conntrackUdp(router, { src: outsider.site.publicAddress, dport: inside.mapped.port })).toEqual([]);
  });

  it('two bare-masquerade routers facing each other meet when each first sends a small-TTL probe', async () => {
    const a = await host('masquerade');
    const b = await host('masquerade');
    expect(a.site.ttlDyingInInternet).toBe(2);
    await a.w.call('send', a.port, b.mapped, 'probe', a.site.ttlDyingInInternet);
    await b.w.call('send', b.port, a.mapped, 'probe', b.site.ttlDyingInInternet);
    for (const [self, peer] of [[a, b], [b, a]] as const) {
      await waitFor('the probe to open its own mapping', async () =>
        (await conntrackUdp(self.site.routers[0]!, { src: self.site.hostAddress, sport: self.port, dst: peer.mapped.address, dport: peer.mapped.port })).length > 0);
    }
    // Each probe died in the internet: the far router holds no entry started by it.
    expect(await conntrackUdp(b.site.routers[0]!, { src: a.site.publicAddress })).toEqual([]);
    expect(await conntrackUdp(a.site.routers[0]!, { src: b.site.publicAddress })).toEqual([]);
    await a.w.call('send', a.port, b.mapped, 'hello from a');
    await b.w.call('send', b.port, a.mapped, 'hello from b');
    expect(await b.w.call<Datagram>('next', b.port)).toEqual({ from: a.mapped, text: 'hello from a' });
    expect(await a.w.call<Datagram>('next', a.port)).toEqual({ from: b.mapped, text: 'hello from b' });
  });
});
