// Moving nodes (issue 11 item 3): a node whose underlay changes under a running agent (its
// address replaced on the uplink, its default route moved to another router with another
// public address) and a site router that reboots (conntrack emptied, every flow mapped
// anew to other ports). The agent follows netlink for the first two (underlay/) and its
// peers' missed keepalive checks and its TURN check for the third (no local event).
// Traffic between the two nodes (a 20 ms ping through the overlay) must be back within
// 5 s of the change; asserted at 6 s, a second of margin for 2 busy cores. Before this,
// NAT rebinding cost 7.4-8.5 s (README), a renumbered node up to the 30 s STUN refresh.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { moveDefaultRoute, rebootRouter, renumberHost, type SiteKind } from '../../../helpers/natlab.js';
import { seqPing } from '../../../helpers/seq-ping.js';
import { waitFor } from '../../../helpers/sh.js';

const TARGET_MS = 5000;
const BOUND_MS = TARGET_MS + 1000;
const WG_PORT = 51820;

let current: AgentLab | undefined;

afterEach(async (ctx) => {
  if ((process.env.MOVING_LOGS || ctx.task.result?.state === 'fail') && current) for (const n of current.nodes) console.log(`--- ${n.name} agent log ---\n${current.log(n).slice(-6000)}`);
  await current?.destroy();
  current = undefined;
}, 120_000);

async function pathOf(from: AgentNode, to: AgentNode): Promise<{ path: string; endpoint?: string } | undefined> {
  return (await current!.status(from)).peers.find((p) => p.node === to.name);
}

/** Two nodes of the given kinds, agents running, settled on `path` both ways; `prepare` runs on b's site before the agents start. */
async function settledPair(kinds: [SiteKind, SiteKind], names: [string, string], path: 'direct' | 'relayed', prepare?: (b: AgentNode) => Promise<void>): Promise<{ lab: AgentLab; a: AgentNode; b: AgentNode }> {
  current = await AgentLab.create();
  const a = await current.addNode(kinds[0], names[0]);
  const b = await current.addNode(kinds[1], names[1]);
  await prepare?.(b);
  await Promise.all([current.start(a), current.start(b)]);
  await waitFor('a to reach b', () => current!.ping(a, b.hostAddress, 1), 30_000, 200);
  await waitFor(`both to settle on ${path}`, async () =>
    (await pathOf(a, b))?.path === path && (await pathOf(b, a))?.path === path, 20_000, 200);
  return { lab: current, a, b };
}

/**
 * A 20 ms ping from a to b across `change`; after it, waits until `settled` holds, then 2 s
 * more; returns the longest gap and prints the figures.
 */
async function across(what: string, a: AgentNode, b: AgentNode, change: () => Promise<void>, settled: () => Promise<boolean>): Promise<number> {
  const ping = seqPing(a, b.hostAddress);
  await ping.answering;
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  await change();
  await waitFor(`${what}: the pair to settle again`, settled, 30_000, 100);
  const settledAfter = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 2000));
  const { sent, answered, longestGapMs } = await ping.stop();
  console.log(`${what}: longest gap ${longestGapMs} ms (target ${TARGET_MS} ms, asserted < ${BOUND_MS} ms); settled after ${settledAfter} ms; ${sent} pings every 20 ms, ${sent - answered} lost`);
  return longestGapMs;
}

describe('warren-agent on moving nodes', () => {
  it('direct: the node\'s address is replaced on its uplink (the router NATs the new one)', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'masquerade'], ['mva-a', 'mva-b'], 'direct');
    const before = (await pathOf(a, b))?.endpoint;
    const from = lab.log(b).length;
    const gap = await across('direct, address replaced', a, b, async () => {
      b.site = await renumberHost(b.site, `10.${b.site.index}.0.9`);
    }, async () => {
      const p = await pathOf(a, b);
      return p?.path === 'direct' && p.endpoint !== before && await lab.ping(a, b.hostAddress, 1);
    });
    expect(lab.log(b).slice(from)).toContain('underlay changed');
    expect(gap).toBeLessThan(BOUND_MS);
    expect((await pathOf(b, a))?.path).toBe('direct');
  }, 180_000);

  it('direct: the default route moves to another router with another public address', async () => {
    let uplink!: Awaited<ReturnType<AgentLab['lab']['addUplink']>>;
    const { lab, a, b } = await settledPair(['home-router', 'home-router'], ['mvr-a', 'mvr-b'], 'direct', async (b) => {
      uplink = await current!.lab.addUplink(b.site);
    });
    const expected = `${uplink.publicAddress}:${WG_PORT}`;
    const gap = await across('direct, default route moved', a, b, () => moveDefaultRoute(b.site, uplink), async () => {
      const p = await pathOf(a, b);
      return p?.path === 'direct' && p.endpoint === expected;
    });
    expect((await lab.status(b)).nat.reflexive).toBe(expected);
    expect(gap).toBeLessThan(BOUND_MS);
  }, 180_000);

  it('direct: the site router reboots (conntrack emptied, new ports)', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'masquerade'], ['mvb-a', 'mvb-b'], 'direct');
    const gap = await across('direct, router rebooted', a, b, () => rebootRouter(b.site), async () => {
      const p = await pathOf(a, b);
      const port = Number(p?.endpoint?.split(':')[1]);
      return p?.path === 'direct' && port >= 40000 && port <= 49999;
    });
    expect((await lab.status(b)).nat.reflexive).toMatch(new RegExp(`^${b.site.publicAddress.replaceAll('.', '\\.')}:4\\d{4}$`));
    expect(gap).toBeLessThan(BOUND_MS);
  }, 180_000);

  it('relayed: the site router reboots (the TURN allocation\'s mapping is gone)', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['mvt-a', 'mvt-b'], 'relayed');
    const relay = (await lab.status(b)).relay;
    const gap = await across('relayed, router rebooted', a, b, () => rebootRouter(b.site), async () =>
      (await lab.status(b)).relay !== relay && (await pathOf(a, b))?.path === 'relayed' && lab.ping(a, b.hostAddress, 1));
    expect(lab.log(b)).toContain('TURN allocation lost: allocating a new one');
    expect(gap).toBeLessThan(BOUND_MS);
  }, 180_000);

  it('relayed: the node\'s address is replaced on its uplink', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['mvl-a', 'mvl-b'], 'relayed');
    const relay = (await lab.status(b)).relay;
    const gap = await across('relayed, address replaced', a, b, async () => {
      b.site = await renumberHost(b.site, `10.${b.site.index}.0.9`);
    }, async () => (await lab.status(b)).relay !== relay && (await pathOf(a, b))?.path === 'relayed' && lab.ping(a, b.hostAddress, 1));
    expect(lab.log(b)).toContain('underlay changed');
    expect(gap).toBeLessThan(BOUND_MS);
  }, 180_000);
});
