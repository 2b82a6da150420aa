// What STUN learns through the port share is WireGuard's own public endpoint: compared with
// the endpoint a public peer's real wireguard-go records after a handshake this node
// started, behind each kind of NAT, while WireGuard traffic flows and STUN repeats.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatEndpoint } from '../../../../node-agent/nat/stun-address.js';
import type { WgPortMapping } from '../../../../node-agent/traversal/prober.js';
import { disablePortShare, enablePortShare, readPortShareCounters } from '../../../../node-agent/traversal/port-share.js';
import { useNatLab, type NsWorker, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import { iperfClient } from '../../../helpers/iperf.js';
import { pingCounts, pingOk } from '../wireguard/cluster.js';
import type { StunLoopReport } from './prober-worker.js';
import { PROBE_PORT, WG_PORT, useWgHosts, type WgHost } from './wg-hosts.js';

const WORKER = fileURLToPath(new URL('./prober-worker.ts', import.meta.url));
const PINGS = 300;

interface Node {
  site: Site;
  wg: WgHost;
  w: NsWorker;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

describe('WGPORT\'s public mapping through the port share (real wireguard-go, real NAT routers)', () => {
  const lab = useNatLab();
  const hosts = useWgHosts();

  /** A node behind `kind` with wireguard-go on WG_PORT, the port share, and the agent's probe socket. */
  async function node(kind: SiteKind): Promise<Node> {
    const site = await lab().addSite(kind);
    const wg = await hosts().add(site);
    expect(await enablePortShare(site.host.runner, { wgPort: WG_PORT, probePort: PROBE_PORT })).toBe('created');
    const w = await lab().startWorker(site.host, WORKER);
    expect(await w.call<number>('open', WG_PORT, PROBE_PORT)).toBe(PROBE_PORT);
    return { site, wg, w };
  }

  /** `n` is configured with the public peer's endpoint, the peer with none: only `n` can start the handshake. */
  async function handshakeFrom(n: Node, peer: Node): Promise<void> {
    await hosts().configure(peer.wg, [{ host: n.wg }]);
    await hosts().configure(n.wg, [{ host: peer.wg, endpoint: { address: peer.site.publicAddress, port: WG_PORT } }]);
    await waitFor('a ping over the tunnel from the node behind the NAT', () => pingOk(n.site.host, peer.wg.overlayAddress), 20_000, 0);
  }

  it.each<SiteKind>(['home-router', 'masquerade'])('%s: STUN reports the endpoint the public peer records, and WireGuard loses no packet while STUN repeats', async (kind) => {
    const n = await node(kind);
    const pub = await node('public');
    const mapping = await n.w.call<WgPortMapping>('reflexive', lab().stunServers);
    expect(mapping.failed).toEqual([]);
    expect(mapping.behavior).toBe('endpoint-independent');
    // Linux masquerade keeps a free source port: WGPORT's mapping, not PROBEPORT's.
    expect(mapping.reflexive).toEqual({ address: n.site.publicAddress, port: WG_PORT });

    await handshakeFrom(n, pub);
    expect(await hosts().endpointOf(pub.wg, n.wg)).toBe(formatEndpoint(mapping.reflexive));

    // WireGuard both ways (requests out of WGPORT, replies into it) while STUN runs round after round.
    const before = await readPortShareCounters(n.site.host.runner);
    await n.w.call('startStunLoop', lab().stunServers);
    const pinger = hosts().spawnIn(n.site.host, 'ping', ['-n', '-q', '-c', String(PINGS), '-i', '0.01', '-W', '1', pub.wg.overlayAddress]);
    const pingExit = await pinger.exited;
    const loop = await n.w.call<StunLoopReport>('stopStunLoop');
    expect(pingExit, pinger.output()).toBe(0);
    expect(pingCounts(pinger.output())).toEqual({ transmitted: PINGS, received: PINGS });
    expect(loop.rounds).toBeGreaterThan(10);
    expect(loop.reflexive).toEqual([formatEndpoint(mapping.reflexive)]);

    // Every datagram the rule diverted reached the agent and was STUN: none was WireGuard's.
    const after = (await readPortShareCounters(n.site.host.runner))!;
    expect(await n.w.call('receivedCount')).toEqual({ all: after.diverted, notStun: 0 });
    expect(after.diverted - before!.diverted).toBe(loop.transmissions + loop.rounds); // one answer per transmission, one loopback check per round
    expect(await hosts().endpointOf(pub.wg, n.wg)).toBe(formatEndpoint(mapping.reflexive));

    const rtt = await n.w.call<{ rewrite: number[]; plain: number[] }>('compareStunRtt', lab().stunServers[0], 200);
    console.info(`[traversal] ${kind}: ${loop.rounds} STUN rounds (${loop.transmissions} answers) during ${PINGS} pings, 0 lost; ` +
      `STUN RTT first round ${mapping.probes.map((p) => p.rttMs.toFixed(2)).join('/')} ms (cold), then median through the rewrite ` +
      `${median(rtt.rewrite).toFixed(3)} ms vs plain socket ${median(rtt.plain).toFixed(3)} ms (200 each, alternating)`);
  });

  it('symmetric NAT (kind 5): the port STUN reports is not the one the peer records (endpoint-dependent mapping)', async () => {
    const n = await node('symmetric');
    const pub = await node('public');
    const mapping = await n.w.call<WgPortMapping>('reflexive', lab().stunServers);
    expect(mapping.behavior).toBe('address-and-port-dependent');
    await handshakeFrom(n, pub);
    const recorded = await hosts().endpointOf(pub.wg, n.wg);
    const [address, port] = recorded!.split(':');
    expect(address).toBe(n.site.publicAddress);
    // Each destination gets its own random port: no STUN server can tell a peer this one.
    expect(mapping.probes.map((p) => p.mapped.port)).not.toContain(Number(port));
    console.info(`[traversal] symmetric: STUN saw ports ${mapping.probes.map((p) => p.mapped.port).join(', ')}, the peer records ${port}`);
  });

  it('iperf3 over the tunnel with and without the table (information, one run each)', async () => {
    const n = await node('masquerade');
    const pub = await node('public');
    await handshakeFrom(n, pub);
    const server = hosts().spawnIn(pub.site.host, 'iperf3', ['-s', '-p', '5201']);
    await waitFor('iperf3 to listen', async () => (await pub.site.host.runner('ss', ['-Hltn', 'sport = :5201'])).stdout.trim() !== '');
    const gbps = async (): Promise<number> => (await iperfClient(n.site.host.runner, pub.wg.overlayAddress)).gbps;
    const withTable = await gbps();
    expect(await disablePortShare(n.site.host.runner)).toBe('removed');
    const without = await gbps();
    console.info(`[traversal] iperf3 TCP over wireguard-go through kind 4, 1 stream, 3 s: with the table ${withTable.toFixed(2)} Gbit/s, without ${without.toFixed(2)} Gbit/s`);
    expect(withTable).toBeGreaterThan(0);
    expect(without).toBeGreaterThan(0);
    server.child.kill('SIGTERM');
    await server.exited;
  });
});
