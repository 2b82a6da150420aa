// Nodes sharing a LAN (issue 11 item 2), with the real binaries: two, then three nodes
// behind one home router (a switch between the router and the hosts, so traffic between
// hosts never enters the router), once with a router that hairpins (NAT loopback) and
// once with one that does not, plus one node at another site. Every LAN pair must go
// direct over the peer's LAN address (status: the endpoint, and the endpoint's kind),
// carry pings, and send nothing to the router's public address while it does (the
// router's counter of such packets); the pairs with the other site take the path the NAT
// matrix expects for its kind and carry traffic too.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { toPublicFromLan, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';

const WG_PORT = 51820;
/** As in the NAT matrix: the first packet within this long of the later end's decision. */
const FIRST_PACKET_AFTER_DECISION_MS = 3_000;
/** Pings each way per LAN pair while the router's counter is watched. */
const BURST = 40;

let current: AgentLab | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && current) for (const n of current.nodes) console.log(`--- ${n.name} agent log ---\n${current.log(n).slice(-5000)}`);
  await current?.destroy();
  current = undefined;
}, 120_000);

interface Reached {
  from: string;
  to: string;
  path: string;
  via: string | undefined;
  endpoint: string | undefined;
  firstPacketMs: number;
  afterDecisionMs: number | undefined;
}

/** Pings `to` from `from` until one is answered and `from`'s status shows a settled path to it. */
async function reach(lab: AgentLab, from: AgentNode, to: AgentNode, startedAt: number, settled: (p: { path: string; endpoint?: string }) => boolean): Promise<Reached> {
  await waitFor(`${from.name} to reach ${to.name}`, () => lab.ping(from, to.hostAddress), 60_000, 200);
  const firstPacketMs = Date.now() - startedAt;
  let peer: { path: string; via?: string; endpoint?: string } | undefined;
  await waitFor(`${from.name}'s path to ${to.name} to settle`, async () => {
    peer = (await lab.status(from)).peers.find((p) => p.node === to.name);
    return peer !== undefined && settled(peer);
  }, 20_000, 200).catch(() => undefined);
  const path = peer?.path ?? 'unknown';
  const decided = [lab.pathChosenAt(from, to.name, path), lab.pathChosenAt(to, from.name, path)];
  const afterDecisionMs = decided.includes(undefined) ? undefined : startedAt + firstPacketMs - Math.max(...(decided as number[]));
  return { from: from.name, to: to.name, path, via: peer?.via, endpoint: peer?.endpoint, firstPacketMs, afterDecisionMs };
}

/** Every endpoint `node` ever chose for `peer` (its "peer path" log lines). */
function endpointsChosen(lab: AgentLab, node: AgentNode, peer: string): string[] {
  return lab.log(node).split('\n').filter((l) => l.includes('"peer path"')).map((l) => JSON.parse(l) as { peer?: string; endpoint?: string })
    .filter((j) => j.peer === peer && j.endpoint !== undefined).map((j) => j.endpoint!);
}

function expectedRemotePath(kind: SiteKind): 'direct' | 'relayed' {
  return kind === 'symmetric' ? 'relayed' : 'direct';
}

async function burst(from: AgentNode, to: AgentNode): Promise<number> {
  const r = await from.site.host.exec('ping', ['-q', '-c', String(BURST), '-i', '0.02', '-W', '1', to.hostAddress], { allowFailure: true });
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

describe.each([
  { hairpin: false, remote: 'home-router' as SiteKind },
  { hairpin: true, remote: 'symmetric' as SiteKind },
])('nodes sharing a LAN behind a home router, hairpin $hairpin, another site $remote', ({ hairpin, remote }) => {
  it('two, then three nodes go direct over their LAN addresses; the other site as the NAT matrix says', async () => {
    const lab = current = await AgentLab.create();
    const site: Site = await lab.lab.addSite('home-router', { hosts: 3, hairpin });
    const a = await lab.addNode('home-router', 'a', undefined, { on: { site, host: 0 } });
    const b = await lab.addNode('home-router', 'b', undefined, { on: { site, host: 1 } });
    const r = await lab.addNode(remote, 'r');
    // site.hostAddress: the node's own host on the LAN (hostAddress is its overlay address).
    const lanEndpoint = (n: AgentNode) => `${n.site.hostAddress}:${WG_PORT}`;
    const results: Reached[] = [];
    /** `fresh`: the nodes whose agents were just started; only pairs with one of them are timed. */
    const checkLan = async (nodes: AgentNode[], fresh: AgentNode[], startedAt: number) => {
      const timed = (got: Reached) => { if (fresh.some((n) => n.name === got.from || n.name === got.to)) results.push(got); return got; };
      const pairs = nodes.flatMap((x) => nodes.filter((y) => y !== x).map((y) => [x, y] as const));
      const settled = (p: { path: string }) => p.path === 'direct' || p.path === 'relayed';
      // The LAN pairs and the other site at once: each first packet is timed from the same start.
      const remoteReached = Promise.all(nodes.flatMap((x) => [reach(lab, x, r, startedAt, settled), reach(lab, r, x, startedAt, settled)]).map(async (p) => timed(await p)));
      const got = await Promise.all(pairs.map(async ([x, y]) => timed(await reach(lab, x, y, startedAt, (p) => p.path === 'direct' && p.endpoint === lanEndpoint(y)))));
      const remotes = await remoteReached;
      for (const [i, [x, y]] of pairs.entries()) {
        expect(got[i], `${x.name} -> ${y.name}`).toMatchObject({ path: 'direct', via: 'lan', endpoint: lanEndpoint(y) });
        // Never hairpinned, not even for a moment: no direct endpoint chosen but the LAN one
        // (a node whose name sorts later may not have chosen one yet: its WireGuard roams).
        expect(endpointsChosen(lab, x, y.name).filter((e) => e !== lanEndpoint(y)), `${x.name}'s other endpoints for ${y.name}`).toEqual([]);
      }
      // Nothing of the LAN pairs' traffic goes to the router: its counter of packets from
      // the LAN to its public address barely moves during 2 x BURST pings per pair (the
      // other site's traffic does not go to that address; only a stray check could).
      const before = await toPublicFromLan(site);
      for (const [x, y] of pairs) expect(await burst(x, y), `${x.name} -> ${y.name} pings answered`).toBeGreaterThanOrEqual(BURST - 2);
      const routed = await toPublicFromLan(site) - before;
      console.log(`[lan] hairpin ${hairpin}: ${nodes.length} nodes, ${pairs.length * BURST} pings over the LAN, ${routed} packets to the router's public address meanwhile`);
      expect(routed).toBeLessThan(pairs.length);
      for (const x of remotes) expect(x.path, `${x.from} -> ${x.to} (other site ${remote})`).toBe(expectedRemotePath(remote));
    };

    let startedAt = Date.now();
    await Promise.all([a, b, r].map((n) => lab.start(n)));
    await checkLan([a, b], [a, b, r], startedAt);

    const c = await lab.addNode('home-router', 'c', undefined, { on: { site, host: 2 } });
    startedAt = Date.now();
    await lab.start(c);
    await checkLan([a, b, c], [c], startedAt);

    const ms = (v: number | undefined) => (v === undefined ? '-' : `${v} ms`);
    console.log([`[lan] hairpin ${hairpin}, other site ${remote} (first packet: since the agents' start; since the later decision)`,
      ...results.map((x) => `${x.from} -> ${x.to}  ${x.path}${x.via ? ` (${x.via})` : ''}  ${x.endpoint ?? '-'}  ${ms(x.firstPacketMs)}  ${ms(x.afterDecisionMs)}`)].join('\n'));
    const late = results.filter((x) => x.afterDecisionMs === undefined || x.afterDecisionMs > FIRST_PACKET_AFTER_DECISION_MS);
    expect(late.map((x) => `${x.from} -> ${x.to}: ${ms(x.afterDecisionMs)}`)).toEqual([]);
  }, 240_000);
});
