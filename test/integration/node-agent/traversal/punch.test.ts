// Two nodes behind bare Linux masquerade routers (input accepted: the conntrack trap of
// TESTBED.md, tailscale#20910) with real wireguard-go. Each learns WGPORT's public
// mapping through the port share; with a small-TTL punch from each side first, WireGuard
// meets directly on those endpoints. Without it, one side's first WireGuard packet arriving
// early makes the other router move that side's mapping to another port, and the direct
// path never forms.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatEndpoint, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import type { WgPortMapping } from '../../../../node-agent/traversal/prober.js';
import { enablePortShare } from '../../../../node-agent/traversal/port-share.js';
import { conntrackUdp, useNatLab, type NsWorker, type Site } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import { pingCounts, pingOk } from '../wireguard/cluster.js';
import { PROBE_PORT, WG_PORT, useWgHosts, type WgHost } from './wg-hosts.js';

const WORKER = fileURLToPath(new URL('./prober-worker.ts', import.meta.url));

interface Node {
  site: Site;
  router: Site['routers'][number];
  wg: WgHost;
  w: NsWorker;
  reflexive: Endpoint;
}

/** The public port a router's conntrack entry maps the inside endpoint to: the reply direction's dport. */
function mappedPort(entry: string): number {
  const ports = [...entry.matchAll(/dport=(\d+)/g)].map((m) => Number(m[1]));
  if (ports.length !== 2) throw new Error(`not a two-way conntrack entry: ${entry}`);
  return ports[1]!;
}

describe('WireGuard between two bare-masquerade NATs (the conntrack trap)', () => {
  const lab = useNatLab();
  const hosts = useWgHosts();

  async function node(): Promise<Node> {
    const site = await lab().addSite('masquerade');
    const wg = await hosts().add(site);
    await enablePortShare(site.host.runner, { wgPort: WG_PORT, probePort: PROBE_PORT });
    const w = await lab().startWorker(site.host, WORKER);
    await w.call('open', WG_PORT, PROBE_PORT);
    const m = await w.call<WgPortMapping>('reflexive', lab().stunServers);
    expect(m.behavior).toBe('endpoint-independent');
    expect(m.reflexive).toEqual({ address: site.publicAddress, port: WG_PORT });
    return { site, router: site.routers[0]!, wg, w, reflexive: m.reflexive };
  }

  /** Router conntrack entries of `self`'s WireGuard flow toward `peer`'s reflexive endpoint. */
  const flowToward = (self: Node, peer: Node) =>
    conntrackUdp(self.router, { src: self.site.hostAddress, sport: WG_PORT, dst: peer.reflexive.address, dport: peer.reflexive.port });

  /** Both know each other's key; neither has an endpoint yet, so neither sends. */
  async function introduce(a: Node, b: Node): Promise<void> {
    await hosts().configure(a.wg, [{ host: b.wg }]);
    await hosts().configure(b.wg, [{ host: a.wg }]);
  }

  it('with a small-TTL punch from each side first, the direct handshake completes on the STUN endpoints', async () => {
    const a = await node();
    const b = await node();
    await introduce(a, b);
    expect(a.site.ttlDyingInInternet).toBe(2);

    await a.w.call('punch', b.reflexive, a.site.ttlDyingInInternet);
    await b.w.call('punch', a.reflexive, b.site.ttlDyingInInternet);
    for (const [self, peer] of [[a, b], [b, a]] as const) {
      await waitFor('the punch to open WGPORT\'s mapping in its own router', async () => (await flowToward(self, peer)).length > 0);
      expect(mappedPort((await flowToward(self, peer))[0]!)).toBe(WG_PORT);
      // It died in the internet: the far router recorded nothing from this side.
      expect(await conntrackUdp(peer.router, { src: self.site.publicAddress })).toEqual([]);
    }

    await Promise.all([
      hosts().configure(a.wg, [{ host: b.wg, endpoint: b.reflexive }]),
      hosts().configure(b.wg, [{ host: a.wg, endpoint: a.reflexive }]),
    ]);
    // Both sides start at once, as two agents acting on the same candidate exchange would.
    const set = performance.now();
    const firstReply = async (from: Node, to: Node): Promise<number> => {
      await waitFor(`${from.site.host.name} to ping over the tunnel`, () => pingOk(from.site.host, to.wg.overlayAddress), 20_000, 0);
      return performance.now() - set;
    };
    const [aMs, bMs] = await Promise.all([firstReply(a, b), firstReply(b, a)]);
    // Direct: each side's WireGuard talks to the other's STUN-learned WGPORT endpoint, no relay involved.
    expect(await hosts().endpointOf(a.wg, b.wg)).toBe(formatEndpoint(b.reflexive));
    expect(await hosts().endpointOf(b.wg, a.wg)).toBe(formatEndpoint(a.reflexive));
    expect(mappedPort((await flowToward(a, b))[0]!)).toBe(WG_PORT);
    expect(mappedPort((await flowToward(b, a))[0]!)).toBe(WG_PORT);
    console.info(`[traversal] kind 4 <-> kind 4 with punch: first ping reply over the tunnel ${aMs.toFixed(1)} ms (a) and ${bMs.toFixed(1)} ms (b) after both endpoints were set`);
  });

  it('control, no punch: b\'s first WireGuard packet reaches a\'s router early, a\'s mapping moves to another port, and the direct path never forms', async () => {
    const a = await node();
    const b = await node();
    await introduce(a, b);
    // b starts first; its handshake initiation reaches a's router before a has sent anything.
    await hosts().configure(b.wg, [{ host: a.wg, endpoint: a.reflexive }]);
    const bPing = hosts().spawnIn(b.site.host, 'ping', ['-n', '-q', '-c', '8', '-i', '1', '-W', '1', a.wg.overlayAddress]);
    await waitFor('b\'s initiation to be recorded by a\'s router', async () =>
      (await conntrackUdp(a.router, { src: b.site.publicAddress, sport: WG_PORT, dport: WG_PORT })).length > 0);

    await hosts().configure(a.wg, [{ host: b.wg, endpoint: b.reflexive }]);
    const aPing = hosts().spawnIn(a.site.host, 'ping', ['-n', '-q', '-c', '8', '-i', '1', '-W', '1', b.wg.overlayAddress]);
    await waitFor('a\'s WireGuard flow toward b in its router', async () => (await flowToward(a, b)).length > 0);
    const moved = mappedPort((await flowToward(a, b))[0]!);
    expect(moved).not.toBe(WG_PORT);

    // Eight seconds span WireGuard's first initiation and its retry 5 s later on both sides.
    expect(await aPing.exited).not.toBe(0);
    expect(await bPing.exited).not.toBe(0);
    expect(pingCounts(aPing.output()).received).toBe(0);
    expect(pingCounts(bPing.output()).received).toBe(0);
    expect(await hosts().handshakeDone(a.wg, b.wg)).toBe(false);
    expect(await hosts().handshakeDone(b.wg, a.wg)).toBe(false);
    console.info(`[traversal] kind 4 <-> kind 4 without punch: STUN said ${WG_PORT}, a's router then mapped a's WireGuard to b on ${moved}; no handshake in 8 s`);
  });
});
