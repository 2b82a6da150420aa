// warren-agent at scale (issue 11 item 4), with the real binaries in the NAT lab:
//
// 1. One real agent facing N peer records (N = 100, 300, 1,000 by default): peers that exist
//    only as records in etcd (allocation under nodes/, record under agents/, as configgen
//    and their agents would write them), every candidate of theirs, local and relay, in
//    198.18.0.0/15, which the agent's site router drops. Reported per N: time from the
//    records' appearance to a converged WireGuard config (N peers, each with its allowed
//    IPs) and route table (a route per peer subnet); the agent's CPU and memory at rest
//    (20 s, once converged); and what one more node joining costs this agent in etcd
//    traffic (watch events and bytes etcd sent, from etcd's own /metrics: the agent is
//    its only watcher). Each figure's growth from the smallest N to the largest is printed:
//    convergence and rest should grow at most linearly, a join's traffic not at all.
// 2. As many real agents as the machine holds (WARREN_BENCH_SCALE_AGENTS, 24 by default),
//    at sites of every NAT kind in turn, started at once: time until every pair has a
//    path (direct or relayed) at both ends, and the pairs that never got one.
//
// Run alone with `npx tsx bench/scale.ts`, or through `make bench`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { keyLayout } from '../lib/etcd/keys.js';
import { parseCidr } from '../lib/cidr.js';
import { AgentLab, type AgentNode } from '../test/helpers/agent-lab.js';
import type { NsWorker, SiteKind } from '../test/helpers/natlab.js';
import { waitFor } from '../test/helpers/sh.js';
import { ratio } from './stats.js';

const SIZES = (process.env.WARREN_BENCH_SCALE_SIZES ?? '100,300,1000').split(',').map(Number);
const AGENTS = Number(process.env.WARREN_BENCH_SCALE_AGENTS ?? 24);
const REST_SECONDS = 20;
const WORKER = fileURLToPath(new URL('./scale-worker.ts', import.meta.url));
const BLACKHOLE = '198.18.0.0/15';
const KINDS: SiteKind[] = ['public', 'full-cone', 'home-router', 'masquerade', 'symmetric', 'double-nat'];

interface SizeFigures {
  peers: number;
  convergeMs: number;
  cpuPercent: number;
  rssMiB: number;
  joinEvents: number;
  joinBytes: number;
}

/** N peer allocations and records that fit the agent's pool and avoid its own subnet and address. */
function syntheticPeers(count: number, own: AgentNode): { name: string; allocation: string; record: string }[] {
  const ownSubnet = parseCidr(own.podSubnet);
  const ownThird = Number(ownSubnet.network.split('.')[2]);
  const out: { name: string; allocation: string; record: string }[] = [];
  for (let i = 0; out.length < count; i++) {
    // /28 subnets of 10.244.0.0/16, sixteen per /24, skipping the agent's own /24.
    const third = Math.floor(i / 16);
    if (third > 255) throw new Error(`no room for ${count} /28 subnets`);
    if (third === ownThird) continue;
    const n = out.length;
    const name = `peer-${String(n).padStart(4, '0')}`;
    const podSubnet = `10.244.${third}.${(i % 16) * 16}/28`;
    // In the lab's host CIDR (172.20.0.0/16), from 172.20.200.0 on, never the agent's own.
    const hostAddress = `172.20.${200 + Math.floor(i / 250)}.${(i % 250) + 2}`;
    if (hostAddress === own.hostAddress) continue;
    const local = `198.18.${Math.floor(n / 250)}.${(n % 250) + 2}`;
    const relay = `198.19.${Math.floor(n / 250)}.${(n % 250) + 2}`;
    out.push({
      name,
      allocation: JSON.stringify({ node: name, index: 1000 + n, podSubnet, gateway: podSubnet.replace(/\d+\/28$/, (m) => `${Number(m.split('/')[0]) + 1}`), hostAddress }),
      record: JSON.stringify({
        node: name, publicKey: randomBytes(32).toString('base64'), hostAddress, podSubnet, listenPort: 51820,
        candidates: [{ kind: 'local', address: local, port: 51820 }, { kind: 'relay', address: relay, port: 50000 }],
        nat: { mapping: 'endpoint-dependent' }, updatedAt: new Date().toISOString(),
      }),
    });
  }
  return out;
}

/** Writes through a worker in etcd's namespace (the root namespace cannot reach the lab). */
function writer(worker: NsWorker, endpoint: string): (entries: [string, string][]) => Promise<void> {
  return (entries) => worker.call('putAll', endpoint, entries);
}

/** etcd's counters of watch events and bytes sent to clients. */
async function etcdCounters(lab: AgentLab): Promise<{ events: number; bytes: number }> {
  const text = await lab.lab.turnNs.runner('curl', ['-s', `${lab.etcd.endpoint}/metrics`]).then((r) => r.stdout);
  const value = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
  return { events: value('etcd_debugging_mvcc_events_total'), bytes: value('etcd_network_client_grpc_sent_bytes_total') };
}

function procTicks(pid: number): number {
  const rest = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function measureSize(count: number): Promise<SizeFigures> {
  const lab = await AgentLab.create();
  try {
    const node = await lab.addNode('home-router', 'scale');
    // The peers' addresses lead nowhere: the site's router drops them.
    const drop = (hook: string) => `  chain ${hook} {\n    type filter hook ${hook} priority -10;\n    ip daddr ${BLACKHOLE} drop\n  }\n`;
    await node.site.routers[0]!.runner('nft', ['-f', '-'], { input: `table ip warren_bench_scale {\n${drop('forward')}${drop('output')}}\n` });
    await lab.lab.turnNs.runner('nft', ['-f', '-'], { input: `table ip warren_bench_scale {\n${drop('output')}}\n` });
    await lab.start(node);
    const pid = node.process!.pid!;
    const keys = keyLayout('/warren');
    const putAll = writer(await lab.lab.startWorker(lab.lab.turnNs, WORKER), lab.etcd.endpoint);
    {
      const peers = syntheticPeers(count, node);
      await putAll(peers.map((p) => [keys.node(p.name), p.allocation]));
      const t0 = Date.now();
      await putAll(peers.map((p) => [keys.agent(p.name), p.record]));
      await waitFor(`${count} peers in WireGuard and the route table`, async () => {
        const dump = (await node.site.host.exec('wg', ['show', node.ifname, 'allowed-ips'])).stdout.trim().split('\n');
        const routes = JSON.parse((await node.site.host.exec('ip', ['-json', 'route', 'show', 'dev', node.ifname])).stdout) as { dst: string }[];
        const withIps = dump.filter((l) => l.split('\t')[1]?.includes('10.244.')).length;
        return withIps >= count && routes.filter((r) => r.dst.startsWith('10.244.')).length >= count;
      }, 300_000, 100);
      const convergeMs = Date.now() - t0;

      // At rest: settled for a while, then measured.
      const alive = (): void => {
        if (node.process?.exitCode !== null || node.process.signalCode !== null) {
          throw new Error(`the agent facing ${count} peers exited (${node.process?.exitCode ?? node.process?.signalCode}):\n${lab.log(node).split('\n').slice(-30).join('\n')}`);
        }
      };
      await new Promise((r) => setTimeout(r, 10_000));
      alive();
      const before = procTicks(pid);
      await new Promise((r) => setTimeout(r, REST_SECONDS * 1000));
      alive();
      const cpuPercent = (procTicks(pid) - before) / REST_SECONDS; // ticks are 1/100 s
      const rss = rssMiB(pid);

      // One more node joins: its allocation and its record.
      const [joiner] = syntheticPeers(count + 1, node).slice(-1);
      const c0 = await etcdCounters(lab);
      await putAll([[keys.node(joiner!.name), joiner!.allocation], [keys.agent(joiner!.name), joiner!.record]]);
      await new Promise((r) => setTimeout(r, 2_000));
      const c1 = await etcdCounters(lab);
      return { peers: count, convergeMs, cpuPercent, rssMiB: rss, joinEvents: c1.events - c0.events, joinBytes: c1.bytes - c0.bytes };
    }
  } finally {
    await lab.destroy();
  }
}

async function manyAgents(count: number): Promise<{ agents: number; pairs: number; allPathsMs: number | undefined; missing: string[] }> {
  const lab = await AgentLab.create();
  try {
    const nodes: AgentNode[] = [];
    for (let i = 0; i < count; i++) nodes.push(await lab.addNode(KINDS[i % KINDS.length]!, `m${String(i).padStart(2, '0')}`));
    const t0 = Date.now();
    await Promise.all(nodes.map((n) => lab.start(n)));
    const pairs = (count * (count - 1)) / 2;
    let missing: string[] = [];
    const done = await waitFor(`every pair of ${count} agents to have a path`, async () => {
      const statuses = await Promise.all(nodes.map((n) => lab.status(n).catch(() => undefined)));
      missing = [];
      statuses.forEach((s, i) => {
        for (const other of nodes) {
          if (other === nodes[i]) continue;
          const p = s?.peers.find((x) => x.node === other.name)?.path;
          if (p !== 'direct' && p !== 'relayed') missing.push(`${nodes[i]!.name}->${other.name}: ${p ?? 'unknown'}`);
        }
      });
      return missing.length === 0;
    }, 180_000, 500).then(() => true, () => false);
    return { agents: count, pairs, allPathsMs: done ? Date.now() - t0 : undefined, missing };
  } finally {
    await lab.destroy();
  }
}

export async function benchScale(): Promise<void> {
  console.log(`\nwarren-agent at scale: one agent facing ${SIZES.join(', ')} peer records (their endpoints dropped)`);
  const rows: SizeFigures[] = [];
  for (const n of SIZES) {
    const f = await measureSize(n);
    rows.push(f);
    console.log(`  ${String(n).padStart(5)} peers: converged in ${(f.convergeMs / 1000).toFixed(1)} s; at rest ${f.cpuPercent.toFixed(1)}% of a core, ` +
      `RSS ${f.rssMiB.toFixed(0)} MiB; one node joining: ${f.joinEvents} watch events, ${f.joinBytes} bytes from etcd`);
  }
  const [small, large] = [rows[0]!, rows.at(-1)!];
  const x = large.peers / small.peers;
  console.log(`  growth from ${small.peers} to ${large.peers} peers (${x}x the peers): convergence ${ratio(large.convergeMs, small.convergeMs)}, ` +
    `CPU at rest ${ratio(large.cpuPercent, small.cpuPercent)}, RSS ${ratio(large.rssMiB, small.rssMiB)}, ` +
    `join events ${ratio(large.joinEvents, small.joinEvents)}, join bytes ${ratio(large.joinBytes, small.joinBytes)}`);
  if (AGENTS < 2) return;
  const m = await manyAgents(AGENTS);
  console.log(`  ${m.agents} real agents started at once (every NAT kind): ${m.allPathsMs === undefined ? 'NOT every pair had a path after 180 s' : `every one of ${m.pairs} pairs had a path at both ends after ${(m.allPathsMs / 1000).toFixed(1)} s`}; ` +
    `pairs without a path: ${m.missing.length}${m.missing.length ? ` (${m.missing.slice(0, 5).join(', ')}...)` : ''}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await benchScale();
