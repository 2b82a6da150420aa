// Node identities with real agents (issue 10, item 1): etcd authentication on, three
// agents, each with its own certificate only (the lab follows README's bootstrap). Node a
// turns hostile and, with its own certificate, tries to take b's traffic:
//   (a) overwrite b's record with a's key and endpoints: etcd refuses;
//   (b) publish a's own record claiming b's pod subnet and host address: etcd takes it (the
//       key is a's own), every peer refuses it and drops a;
//   (c) delete or overwrite b's allocation: etcd refuses;
//   (d) change the pool: etcd refuses.
// Throughout, c's pings to b over the overlay are all answered, and c's WireGuard peer for
// b's pod subnet keeps b's key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexWidth, keyLayout } from '../../../../lib/etcd/keys.js';
import { AgentLab, POOL, type AgentNode } from '../../../helpers/agent-lab.js';
import { waitFor } from '../../../helpers/sh.js';

const keys = keyLayout('/warren');
let lab: AgentLab;
let a: AgentNode;
let b: AgentNode;
let c: AgentNode;

beforeAll(async () => {
  lab = await AgentLab.create(undefined, { auth: true });
  a = await lab.addNode('public', 'a');
  b = await lab.addNode('home-router', 'b');
  c = await lab.addNode('public', 'c');
  await Promise.all(lab.nodes.map((n) => lab.start(n)));
  await waitFor('c to reach b over the overlay', () => lab.ping(c, b.hostAddress), 60_000, 200);
  await waitFor('a to reach b over the overlay', () => lab.ping(a, b.hostAddress), 60_000, 200);
}, 180_000);

afterAll(async () => {
  await lab?.destroy();
}, 120_000);

/** Pings, five a second, until stop(): how many were sent and answered. */
function pingThroughout(from: AgentNode, to: AgentNode): { sent: () => number; stop: () => Promise<{ sent: number; answered: number }> } {
  let stopping = false;
  const counts = { sent: 0, answered: 0 };
  const loop = (async () => {
    while (!stopping) {
      const r = await from.site.host.exec('ping', ['-c', '5', '-i', '0.2', '-W', '2', to.hostAddress], { allowFailure: true });
      const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
      if (!m) throw new Error(`ping from ${from.name} to ${to.name}: ${r.stdout}${r.stderr}`);
      counts.sent += Number(m[1]);
      counts.answered += Number(m[2]);
    }
  })();
  return { sent: () => counts.sent, stop: async () => {
    stopping = true;
    await loop;
    return counts;
  } };
}

/** c's WireGuard peers: public key -> allowed IPs. */
async function wgPeers(node: AgentNode): Promise<Map<string, string[]>> {
  const out = (await node.site.host.exec('wg', ['show', node.ifname, 'allowed-ips'])).stdout;
  return new Map(out.trim().split('\n').filter(Boolean).map((l) => {
    const [key, ips = ''] = l.split('\t');
    return [key!, ips.split(' ').filter((ip) => ip !== '(none)')];
  }));
}

async function asA(args: readonly string[]): Promise<{ exitCode: number; stderr: string }> {
  const r = await lab.etcdctlAs(a, args);
  return { exitCode: r.exitCode, stderr: r.stderr.trim() };
}

const DENIED = { exitCode: 1, stderr: expect.stringContaining('etcdserver: permission denied') };

describe('node identities with agents (etcd authentication on)', () => {
  it('a node\'s own certificate cannot take another node\'s traffic; b keeps it throughout', async () => {
    const bKey = (await lab.status(b)).publicKey;
    const aKey = (await lab.status(a)).publicKey;
    const peerForBSubnet = async () => [...(await wgPeers(c))].find(([, ips]) => ips.includes(b.podSubnet))?.[0];
    expect(await peerForBSubnet()).toBe(bKey);
    const before = await lab.etcd.dump('/warren/');
    const traffic = pingThroughout(c, b);
    try {
      // a reads everything (by design: records are public) and may write only its own record.
      const aRecord = JSON.parse((await lab.etcdctlAs(a, ['get', keys.agent('a'), '--print-value-only'])).stdout) as Record<string, unknown>;
      const bRecord = JSON.parse(before.get(keys.agent('b'))!) as Record<string, unknown>;

      // (a) b's record with a's key and endpoints, or no record for b at all.
      const hijacked = { ...bRecord, publicKey: aRecord.publicKey, candidates: aRecord.candidates, listenPort: aRecord.listenPort };
      expect(await asA(['put', keys.agent('b'), JSON.stringify(hijacked)])).toEqual(DENIED);
      expect(await asA(['del', keys.agent('b')])).toEqual(DENIED);

      // (c) b's allocation, its subnet and host keys: neither released nor overwritten.
      const bAllocation = JSON.parse(before.get(keys.node('b'))!) as { index: number; hostAddress: string };
      const aAllocation = before.get(keys.node('a'))!;
      for (const key of [keys.node('b'), keys.subnet(bAllocation.index, indexWidth(2 ** POOL.nodeBits)), keys.host(bAllocation.hostAddress)]) {
        expect(before.has(key), key).toBe(true);
        expect(await asA(['del', key])).toEqual(DENIED);
        expect(await asA(['put', key, key === keys.node('b') ? aAllocation.replace('"node":"a"', '"node":"b"') : 'a'])).toEqual(DENIED);
      }

      // (d) the pool.
      expect(await asA(['put', keys.pool, JSON.stringify({ podCIDR: '10.0.0.0/8', nodeBits: 2, hostCIDR: POOL.hostCIDR })])).toEqual(DENIED);
      expect(await asA(['del', keys.pool])).toEqual(DENIED);

      const after = await lab.etcd.dump('/warren/');
      expect([keys.agent('b'), keys.node('b'), keys.pool].map((k) => after.get(k))).toEqual([keys.agent('b'), keys.node('b'), keys.pool].map((k) => before.get(k)));

      // (b) a's own key, which etcd lets it write, claiming b's subnet and host address.
      const claim = { ...aRecord, podSubnet: b.podSubnet, hostAddress: b.hostAddress, updatedAt: new Date().toISOString() };
      expect(await asA(['put', keys.agent('a'), JSON.stringify(claim)])).toEqual({ exitCode: 0, stderr: '' });
      const refusal = `"msg":"peer record refused","error":"etcd key ${keys.agent('a')}: field podSubnet is ${b.podSubnet}, but a's allocation is ${a.podSubnet}"`;
      for (const peer of [b, c]) {
        await waitFor(`${peer.name} to refuse a's record`, () => lab.log(peer).includes(refusal), 20_000, 200);
        // Refused, a is no peer at all: no tunnel, no route, until its record agrees again.
        await waitFor(`${peer.name} to drop a`, async () => !(await lab.status(peer)).peers.some((p) => p.node === 'a'), 20_000, 200);
      }
      const peers = await wgPeers(c);
      expect(peers.has(aKey)).toBe(false);
      expect(await peerForBSubnet()).toBe(bKey);
      // Ten seconds more traffic with the claim in place: two of every agent's reconcile rounds (5 s).
      const mark = traffic.sent();
      await waitFor('50 more pings', () => traffic.sent() >= mark + 50, 30_000, 200);
      expect(await peerForBSubnet()).toBe(bKey);
      expect((await wgPeers(c)).has(aKey)).toBe(false);
    } finally {
      const { sent, answered } = await traffic.stop();
      console.log(`c -> b over the overlay while a attacked: ${answered} of ${sent} pings answered`);
      expect(sent).toBeGreaterThan(0);
      expect(answered).toBe(sent);
    }
  }, 120_000);
});
