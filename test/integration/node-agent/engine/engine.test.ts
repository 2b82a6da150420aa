// The traversal engine end to end in the NAT lab: per host the real Prober behind the real
// port share, Checks, a TURN allocation on coturn with the RelayProxy, and real
// wireguard-go reconciled to the engine's desired endpoints. Each pair starts the way two
// agents do: both publish a record (local, reflexive, relay candidates), then each
// engine is handed the other's record; the clock runs from that handover to the first
// ping reply over the overlay.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import * as K from '../../../../node-agent/engine/knobs.js';
import { formatEndpoint } from '../../../../node-agent/nat/stun-address.js';
import type { Candidate } from '../../../../node-agent/signal/record.js';
import { enablePortShare } from '../../../../node-agent/traversal/port-share.js';
import { useNatLab, type NsWorker, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import { PROBE_PORT, WG_PORT, useWgHosts, type Spawned, type WgHost } from '../traversal/wg-hosts.js';
import type { Report, Started } from './engine-worker.js';

const WORKER = fileURLToPath(new URL('./engine-worker.ts', import.meta.url));

interface Node {
  name: string;
  site: Site;
  wg: WgHost;
  w: NsWorker;
  started: Started;
}

const candidate = (n: Node, kind: Candidate['kind']): string => {
  const c = n.started.record.candidates.find((x) => x.kind === kind)!;
  return formatEndpoint(c);
};

describe('traversal engine (real NAT routers, wireguard-go, coturn)', () => {
  const lab = useNatLab();
  const hosts = useWgHosts();
  let workers: NsWorker[] = [];
  // Registered last, so it runs first: the engines stop before their hosts and lab go.
  afterEach(async () => {
    try {
      for (const w of workers) await w.call('stop');
    } finally {
      workers = [];
    }
  });

  async function node(kind: SiteKind, name: string): Promise<Node> {
    const site = await lab().addSite(kind);
    const wg = await hosts().add(site);
    await enablePortShare(site.host.runner, { wgPort: WG_PORT, probePort: PROBE_PORT });
    const w = await lab().startWorker(site.host, WORKER);
    workers.push(w);
    const started = await w.call<Started>('start', {
      node: name, wgPort: WG_PORT, probePort: PROBE_PORT, ifname: wg.ifname, publicKey: wg.key.publicKey, privateKeyPath: wg.key.privateKeyPath,
      overlayAddress: wg.overlayAddress, podSubnet: wg.podSubnet, hostAddress: site.hostAddress, stunServers: lab().stunServers, turn: lab().turn,
    });
    // The hop count puts the punch where natlab says a small TTL dies: in the internet,
    // past every router of the site (for a public host the TTL floor of 2 wins).
    if (kind !== 'public') expect(started.punchTtl).toBe(site.ttlDyingInInternet);
    return { name, site, wg, w, started };
  }

  const report = (n: Node): Promise<Report> => n.w.call<Report>('report');
  /** The engine's phase for its one peer, once it has given WireGuard an endpoint (the node whose name sorts last holds its first one back a second). */
  const phaseOf = async (n: Node): Promise<string | undefined> => {
    const s = (await report(n)).status[0];
    return s?.endpoint === undefined ? undefined : s.phase;
  };

  /** A continuous ping with a timestamp per reply, started before the records are handed over. */
  const pinger = (from: Node, to: Node): Spawned => hosts().spawnIn(from.site.host, 'ping', ['-D', '-n', '-i', '0.05', to.wg.overlayAddress]);

  async function firstReply(p: Spawned, t0: number, timeoutMs: number): Promise<number> {
    let at: number | undefined;
    await waitFor('a ping reply over the overlay', () => {
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/m.exec(p.output());
      if (m) at = Number(m[1]) * 1000;
      return at !== undefined;
    }, timeoutMs, 20);
    p.child.kill('SIGINT');
    await p.exited;
    return at! - t0;
  }

  /** Both engines get each other's record at once; returns ms from the later handover to each side's first ping reply. */
  async function meet(a: Node, b: Node, timeoutMs: number): Promise<{ aMs: number; bMs: number }> {
    const pa = pinger(a, b);
    const pb = pinger(b, a);
    const [ta, tb] = await Promise.all([
      a.w.call<number>('setPeers', [a.started.record, b.started.record]),
      b.w.call<number>('setPeers', [a.started.record, b.started.record]),
    ]);
    const t0 = Math.max(ta, tb);
    try {
      const [aMs, bMs] = await Promise.all([firstReply(pa, t0, timeoutMs), firstReply(pb, t0, timeoutMs)]);
      return { aMs, bMs };
    } catch (err) {
      // What each engine decided and what each WireGuard holds: the first things to read.
      const state = async (n: Node): Promise<string> =>
        `${n.name}: ${JSON.stringify(await report(n))}\n${(await n.site.host.runner('wg', ['show', n.wg.ifname])).stdout}`;
      throw new Error(`${(err as Error).message}\n${await state(a)}\n${await state(b)}`, { cause: err });
    }
  }

  const summary = (n: Node, r: Report): string => {
    const s = r.status[0]!;
    return `${n.name} (kind ${n.site.kind}, hops ${n.started.hops} in ${n.started.ms.hops.toFixed(0)} ms, punch TTL ${n.started.punchTtl}): ${s.phase} via ${s.endpoint} decided at ` +
      `${s.sinceMs?.toFixed(0)} ms, checks ${JSON.stringify(r.checks)}`;
  };

  it('kind 4 <-> kind 4 (facing Linux masquerade routers): both go direct on the STUN endpoints, ping answers within 2 s', async () => {
    const a = await node('masquerade', 'node-a');
    const b = await node('masquerade', 'node-b');
    expect(a.started.behavior).toBe('endpoint-independent');
    const { aMs, bMs } = await meet(a, b, 10_000);
    await waitFor('both engines direct', async () => (await phaseOf(a)) === 'direct' && (await phaseOf(b)) === 'direct');
    const [ra, rb] = [await report(a), await report(b)];
    expect(ra.status[0]).toMatchObject({ phase: 'direct', relayed: false, endpoint: candidate(b, 'reflexive') });
    expect(rb.status[0]).toMatchObject({ phase: 'direct', relayed: false, endpoint: candidate(a, 'reflexive') });
    expect(await hosts().endpointOf(a.wg, b.wg)).toBe(candidate(b, 'reflexive'));
    expect(await hosts().endpointOf(b.wg, a.wg)).toBe(candidate(a, 'reflexive'));
    expect(await hosts().handshakeDone(a.wg, b.wg)).toBe(true);
    expect([ra.relay, rb.relay]).toEqual([[], []]);
    expect([...ra.errors, ...rb.errors]).toEqual([]);
    console.info(`[engine] kind 4 <-> kind 4: first ping reply ${aMs.toFixed(0)} ms (a) / ${bMs.toFixed(0)} ms (b) after both had the records\n  ${summary(a, ra)}\n  ${summary(b, rb)}`);
    expect(Math.max(aMs, bMs)).toBeLessThan(2000);
  });

  it('kind 5 (symmetric) <-> kind 3 (home router): no direct path; both end relayed through coturn and ping works', async () => {
    const a = await node('symmetric', 'node-a');
    const b = await node('home-router', 'node-b');
    expect(a.started.record.nat.mapping).toBe('endpoint-dependent');
    const { aMs, bMs } = await meet(a, b, 20_000);
    await waitFor('both engines relayed', async () => (await phaseOf(a)) === 'relayed' && (await phaseOf(b)) === 'relayed');
    const [ra, rb] = [await report(a), await report(b)];
    expect(ra.status[0]).toMatchObject({ phase: 'relayed', relayed: true });
    expect(rb.status[0]).toMatchObject({ phase: 'relayed', relayed: true });
    expect(await hosts().endpointOf(a.wg, b.wg)).toBe(ra.status[0]!.endpoint);
    expect(await hosts().endpointOf(b.wg, a.wg)).toBe(rb.status[0]!.endpoint);
    expect(ra.status[0]!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    // Each side's link goes to the other's relay address, and carried WireGuard both ways.
    expect(ra.relay).toMatchObject([{ peerRelay: candidate(b, 'relay'), localEndpoint: ra.status[0]!.endpoint }]);
    expect(rb.relay).toMatchObject([{ peerRelay: candidate(a, 'relay'), localEndpoint: rb.status[0]!.endpoint }]);
    for (const l of [...ra.relay, ...rb.relay]) expect(Math.min(l.toPeerBytes, l.fromPeerBytes)).toBeGreaterThan(0);
    expect([...ra.errors, ...rb.errors]).toEqual([]);
    console.info(`[engine] kind 5 <-> kind 3: first ping reply ${aMs.toFixed(0)} ms (a) / ${bMs.toFixed(0)} ms (b) after both had the records\n  ${summary(a, ra)}\n  ${summary(b, rb)}`);
    // A punch round and a check round without answer, then one TURN round trip and the handshake.
    expect(Math.max(aMs, bMs)).toBeLessThan(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 1000);
  });

  it('kind 5 (symmetric) <-> kind 1 (public): direct; the public side learns the symmetric side\'s real port from its check', async () => {
    const a = await node('symmetric', 'node-a');
    const b = await node('public', 'node-b');
    const { aMs, bMs } = await meet(a, b, 10_000);
    await waitFor('both engines direct', async () => (await phaseOf(a)) === 'direct' && (await phaseOf(b)) === 'direct');
    const [ra, rb] = [await report(a), await report(b)];
    expect(ra.status[0]).toMatchObject({ relayed: false, endpoint: `${b.site.hostAddress}:${WG_PORT}` });
    // Not the port STUN saw: the one a's router gave the flow to b (only a's check could tell).
    const seen = rb.status[0]!.endpoint!;
    expect(seen.startsWith(`${a.site.publicAddress}:`)).toBe(true);
    expect(seen).not.toBe(candidate(a, 'reflexive'));
    expect(rb.status[0]).toMatchObject({ relayed: false });
    expect(await hosts().endpointOf(a.wg, b.wg)).toBe(`${b.site.hostAddress}:${WG_PORT}`);
    expect(await hosts().endpointOf(b.wg, a.wg)).toBe(seen);
    expect(rb.checks.triggered).toBeGreaterThan(0);
    expect([...ra.errors, ...rb.errors]).toEqual([]);
    console.info(`[engine] kind 5 <-> kind 1: first ping reply ${aMs.toFixed(0)} ms (a) / ${bMs.toFixed(0)} ms (b) after both had the records\n  ${summary(a, ra)}\n  ${summary(b, rb)}`);
    expect(Math.max(aMs, bMs)).toBeLessThan(2000);
  });

  it.each<SiteKind>(['home-router', 'double-nat'])('%s: hops to the STUN server minus one is the TTL that dies in the internet', async (kind) => {
    const site = await lab().addSite(kind);
    await enablePortShare(site.host.runner, { wgPort: WG_PORT, probePort: PROBE_PORT });
    const w = await lab().startWorker(site.host, WORKER);
    const hops = await w.call<number>('countHops', WG_PORT, PROBE_PORT, lab().stunServers[0]);
    console.info(`[engine] ${kind}: ${hops} hops to the STUN server, punch TTL ${hops - 1}, natlab ttlDyingInInternet ${site.ttlDyingInInternet}`);
    expect(hops - 1).toBe(site.ttlDyingInInternet);
  });
});
