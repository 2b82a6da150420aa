// The agent binary recovering from a network that changes under it: a relayed link moves
// to direct once the far NAT stops mapping per destination, relayed links survive a TURN
// server that loses every allocation, and a direct link follows a NAT that rebinds the
// node's WireGuard port to a new public port. Each test builds its own two sites: the
// routers are rewritten.
import { afterEach, describe, expect, it } from 'vitest';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { natRuleset, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import { seqPing } from '../../../helpers/seq-ping.js';
import { DIRECT_KEEPALIVE_MS, DIRECT_LOST_MS, DIRECT_RETRY_MS, DIRECT_SUSPECT_MS } from '../../../../node-agent/engine/knobs.js';

/** agent.ts: the public mapping is asked again this often. */
const STUN_REFRESH_MS = 30_000;
const WG_PORT = 51820;
const PING_EVERY_MS = 50;

let current: AgentLab | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && current) for (const n of current.nodes) console.log(`--- ${n.name} agent log ---\n${current.log(n).slice(-6000)}`);
  await current?.destroy();
  current = undefined;
}, 120_000);

/** Pings every PING_EVERY_MS until stopped; counts lost ones (unanswered within 1 s) and the longest run of them. */
function pingLoop(from: AgentNode, to: string): { stop: () => Promise<{ sent: number; lost: number; longestOutageMs: number; lostAt: number[] }> } {
  const start = Date.now();
  let running = true;
  let sent = 0;
  let lost = 0;
  const lostAt: number[] = [];
  let outageStart: number | undefined;
  let longestOutageMs = 0;
  const done = (async () => {
    while (running) {
      const at = Date.now();
      sent++;
      if (await current!.ping(from, to, 1)) {
        if (outageStart !== undefined) longestOutageMs = Math.max(longestOutageMs, at - outageStart);
        outageStart = undefined;
      } else {
        lost++;
        lostAt.push(at - start);
        outageStart ??= at;
      }
      await new Promise((r) => setTimeout(r, PING_EVERY_MS));
    }
    if (outageStart !== undefined) longestOutageMs = Math.max(longestOutageMs, Date.now() - outageStart);
  })();
  return { stop: async () => { running = false; await done; return { sent, lost, longestOutageMs, lostAt }; } };
}

/** Replaces the site's NAT router ruleset (the lab's own table) with `ruleset`. */
async function replaceRuleset(site: Site, ruleset: string): Promise<void> {
  const router = site.routers[0]!;
  await router.runner('nft', ['-f', '-'], { input: `table ip natlab\ndelete table ip natlab\n${ruleset}` });
}

/** Forgets the router's mappings of the node's WireGuard port only: its TURN allocation's mapping stays. */
async function forgetWireguardMappings(site: Site): Promise<void> {
  await site.routers[0]!.runner('conntrack', ['-D', '-p', 'udp', '--orig-src', site.hostAddress, '--sport', String(WG_PORT)], { allowFailure: true });
}

async function pathOf(from: AgentNode, to: AgentNode): Promise<{ path: string; endpoint?: string } | undefined> {
  return (await current!.status(from)).peers.find((p) => p.node === to.name);
}

/** A fresh lab with two nodes of the given kinds, both agents running, settled on `path` both ways. */
async function settledPair(kinds: [SiteKind, SiteKind], names: [string, string], path: 'direct' | 'relayed'): Promise<{ lab: AgentLab; a: AgentNode; b: AgentNode }> {
  current = await AgentLab.create();
  const a = await current.addNode(kinds[0], names[0]);
  const b = await current.addNode(kinds[1], names[1]);
  await Promise.all([current.start(a), current.start(b)]);
  await waitFor('a to reach b', () => current!.ping(a, b.hostAddress, 1), 30_000, 200);
  await waitFor(`both to settle on ${path}`, async () =>
    (await pathOf(a, b))?.path === path && (await pathOf(b, a))?.path === path, 20_000, 200);
  return { lab: current, a, b };
}

describe('warren-agent recovery', () => {
  it('moves a relayed link to direct when a direct path becomes possible', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['rec-a', 'rec-b'], 'relayed');
    expect((await lab.status(b)).nat.mapping).toBe('endpoint-dependent');

    const loop = pingLoop(a, b.hostAddress);
    const t0 = Date.now();
    // B's NAT becomes a plain masquerade: its next mapping of the WireGuard port is the same for every destination.
    await replaceRuleset(b.site, natRuleset('masquerade', b.site.hostAddress));
    await forgetWireguardMappings(b.site);
    await waitFor('b to learn its new mapping', async () => (await lab.status(b)).nat.mapping === 'endpoint-independent', STUN_REFRESH_MS + 5_000, 500);
    const learned = Date.now() - t0;
    await waitFor('both to go direct', async () =>
      (await pathOf(a, b))?.path === 'direct' && (await pathOf(b, a))?.path === 'direct', DIRECT_RETRY_MS + STUN_REFRESH_MS + 10_000, 500);
    const direct = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, lost, longestOutageMs, lostAt } = await loop.stop();
    const seen = await pathOf(a, b);
    console.log(`relayed -> direct: mapping learned after ${learned} ms, direct after ${direct} ms; ${sent} pings, ${lost} lost (at ${lostAt.join(', ')} ms), longest outage ${longestOutageMs} ms; a sees ${JSON.stringify(seen)}`);
    // b republishes and starts its checks toward a at once (Engine.retryDirectNow), a starts
    // over on b's new record: a round (punch settle plus a few checks), not DIRECT_RETRY_MS.
    expect(direct - learned).toBeLessThan(10_000);
    expect(seen).toMatchObject({ path: 'direct', endpoint: `${b.site.publicAddress}:${WG_PORT}` });
    expect(sent).toBeGreaterThan(100);
    // The switch only changes WireGuard's endpoint to one already proven by a check: at most 2 s of pings lost.
    expect(lost * PING_EVERY_MS).toBeLessThanOrEqual(2000);
    expect(await lab.ping(b, a.hostAddress, 1)).toBe(true);
  }, 180_000);

  it('replaces its TURN allocation when the TURN server loses it, and relayed traffic resumes', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['trn-a', 'trn-b'], 'relayed');
    const logFrom = [lab.log(a).length, lab.log(b).length];

    const loop = pingLoop(a, b.hostAddress);
    const t0 = Date.now();
    // Every allocation, permission and channel of both nodes is gone.
    await lab.lab.restartCoturn();
    // Until both have new allocations nothing can pass: the old ones are gone.
    await waitFor('a to reach b again', () => lab!.ping(a, b.hostAddress, 1), 60_000, 200);
    const back = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    const { sent, lost, longestOutageMs } = await loop.stop();
    console.log(`TURN server restarted: relayed traffic back after ${back} ms; ${sent} pings, ${lost} lost, longest outage ${longestOutageMs} ms`);
    for (const [i, n] of [a, b].entries()) {
      const log = lab.log(n).slice(logFrom[i]);
      expect(log).toContain('TURN allocation lost: allocating a new one');
      expect(log).toContain('new TURN allocation');
    }
    expect((await pathOf(a, b))?.path).toBe('relayed');
    // Each side notices within TURN_CHECK_MS (agent.ts: 15 s), republishes, and the other
    // side's round of checks (about 5 s) ends on the new relay address.
    expect(longestOutageMs).toBeLessThan(30_000);
    expect(await lab.ping(b, a.hostAddress, 1)).toBe(true);
  }, 180_000);

  it('keeps a relayed pair\'s relay across an agent restart: the allocation is resumed, nothing republished', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['rsm-a', 'rsm-b'], 'relayed');
    const relay = (await lab.status(b)).relay;
    const loop = seqPing(a, b.hostAddress);
    await loop.answering;
    await lab.stop(b);
    await lab.start(b);
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, answered, longestGapMs } = await loop.stop();
    console.log(`relayed pair, agent restarted (stop, then start): ${sent} pings every 20 ms, ${sent - answered} lost, longest gap ${longestGapMs} ms`);
    expect(lab.log(b)).toContain('resumed the previous agent\'s TURN allocation');
    expect((await lab.status(b)).relay).toBe(relay);
    expect((await pathOf(a, b))?.path).toBe('relayed');
    // Traffic stops only while no agent runs (the relay lives in it): the agent's own start.
    expect(longestGapMs).toBeLessThan(5000);
    expect(await lab.ping(b, a.hostAddress, 1)).toBe(true);
  }, 120_000);

  it('hands a relayed pair over from a running agent to a new one (a surging DaemonSet) within a second', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'symmetric'], ['hnd-a', 'hnd-b'], 'relayed');
    const relay = (await lab.status(b)).relay;
    const old = b.process!;
    const from = lab.log(b).length;
    const loop = seqPing(a, b.hostAddress);
    await loop.answering;
    const next = lab.spawnAgent(b);
    await waitFor('the new agent to take over', () => lab.log(b).slice(from).includes('"outcome":"released"') && lab.log(b).slice(from).includes('agent started'), 30_000, 100);
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, answered, longestGapMs } = await loop.stop();
    console.log(`relayed pair, hand-over to a new agent: ${sent} pings every 20 ms, ${sent - answered} lost, longest gap ${longestGapMs} ms`);
    // The old one let go and idles until its pod is deleted; then it exits at once and cleanly.
    expect(old.exitCode).toBeNull();
    expect(lab.log(b).slice(from)).toContain('a new agent takes over');
    const exited = new Promise<number | null>((r) => old.once('exit', (code) => r(code)));
    old.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(next.exitCode).toBeNull();
    expect((await lab.status(b)).relay).toBe(relay);
    expect((await pathOf(b, a))?.path).toBe('relayed');
    expect(longestGapMs).toBeLessThanOrEqual(1000);
    expect(await lab.ping(a, b.hostAddress, 1)).toBe(true);
  }, 120_000);

  it('takes up a TURN server that was down when it started, and relays through it', async () => {
    current = await AgentLab.create();
    const lab = current;
    const a = await lab.addNode('home-router', 'late-a');
    const b = await lab.addNode('symmetric', 'late-b');
    await lab.lab.stopCoturn();
    await Promise.all([lab.start(a), lab.start(b)]);
    expect((await lab.status(a)).relay).toBeUndefined();
    expect(lab.log(a)).toContain('no TURN relay');
    // Direct cannot work between these NATs and there is no relay: status says so, not "relayed".
    await waitFor('a to give up on a direct path to b', async () => (await pathOf(a, b))?.path === 'none', 30_000, 200);
    const none = (await lab.status(a)).peers.find((p) => p.node === b.name)!;
    expect(none).toMatchObject({ path: 'none', reason: 'no direct path, and this node has no TURN relay', rxBytes: 0 });
    expect(none.lastHandshake).toBeUndefined();
    const t0 = Date.now();
    await lab.lab.restartCoturn();
    await waitFor('a to reach b through the relay', () => lab.ping(a, b.hostAddress, 1), 60_000, 200);
    console.log(`TURN server up after the agents: relayed traffic ${Date.now() - t0} ms after it started`);
    expect((await lab.status(a)).relay).toBeDefined();
    expect(lab.log(a)).toContain('new TURN allocation');
    expect((await pathOf(a, b))?.path).toBe('relayed');
  }, 180_000);

  it('recovers from NAT rebinding', async () => {
    const { lab, a, b } = await settledPair(['home-router', 'masquerade'], ['reb-a', 'reb-b'], 'direct');
    const before = (await lab.status(b)).nat.reflexive;
    expect(before).toBe(`${b.site.publicAddress}:${WG_PORT}`);

    const loop = pingLoop(a, b.hostAddress);
    const t0 = Date.now();
    // B's WireGuard port is now mapped to public port 40000 (one port: the same for every
    // destination, so the mapping stays endpoint-independent); everything else as before.
    const newPort = 40000;
    await replaceRuleset(b.site, `table ip natlab {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" udp sport ${WG_PORT} snat to ${b.site.publicAddress}:${newPort};
    oifname "wan" masquerade; }
}\n`);
    await forgetWireguardMappings(b.site);
    const expected = `${b.site.publicAddress}:${newPort}`;
    await waitFor('b to learn its new public endpoint', async () => (await lab!.status(b)).nat.reflexive === expected, STUN_REFRESH_MS + 5_000, 500);
    const learned = Date.now() - t0;
    await waitFor('a to go direct to b\'s new port', async () => {
      const p = await pathOf(a, b);
      return p?.path === 'direct' && p.endpoint === expected;
    }, DIRECT_LOST_MS + 20_000, 200);
    const followed = Date.now() - t0;
    await waitFor('a to reach b again', () => lab!.ping(a, b.hostAddress, 1), 10_000, 100);
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, lost, longestOutageMs, lostAt } = await loop.stop();
    console.log(`rebinding: b learned ${expected} after ${learned} ms, a direct to it after ${followed} ms; ${sent} pings, ${lost} lost (first at ${lostAt[0]} ms, last at ${lostAt.at(-1)} ms), traffic interrupted ${longestOutageMs} ms`);
    expect((await pathOf(b, a))?.path).toBe('direct');
    expect(await lab.ping(b, a.hostAddress, 1)).toBe(true);
    // b notices at its next keepalive check (unanswered: a's NAT drops what comes from the
    // new port), asks STUN at once instead of at its next refresh, republishes; a punches
    // and checks the new port (about a second). Not the 30 s refresh.
    expect(learned).toBeLessThan(DIRECT_KEEPALIVE_MS + DIRECT_SUSPECT_MS + 2000);
    expect(longestOutageMs).toBeLessThan(DIRECT_KEEPALIVE_MS + DIRECT_SUSPECT_MS + 5000);
  }, 180_000);
});
