// warren-agent in the NAT lab (test/helpers/agent-lab.ts), with the real binaries:
//
// 1. Time to the first packet. Two fresh nodes per run (new sites, NATs, keys, WireGuard
//    interfaces), both agents spawned together; the first ping reply over the overlay is
//    timed from the moment both agents answer on their status sockets (the agent opens
//    it last, once it has its interface, NAT mapping, relay and etcd watch) and from the
//    spawn. Direct: two Linux masquerade routers facing each other (both mappings
//    endpoint-independent, both accept unsolicited input: the conntrack trap); relayed:
//    a symmetric NAT facing a home router. Direct and relayed runs alternate. After
//    each run both agents stop, their interfaces (and wireguard-go) go, their records
//    leave etcd: the next pair sees nobody else.
// 2. Throughput and latency between a node behind a home router and a public node
//    (direct path), each with its own OVS and podman (scripts/demo/cluster.ts), in rounds
//    whose order rotates, medians of the rounds: the host overlay (host to host over the
//    agent's WireGuard), raw WireGuard (wireguard-go pairs configured by hand with `wg`,
//    same namespaces, same underlay path through the NAT, same MTU), the unencrypted
//    underlay (the NATed host to the public host's address), pod to pod across the two
//    nodes (OVS, overlay, OVS) and, to show what the bridge costs alone, pod to pod on
//    one node (OVS only).
//
// Run alone with `npx tsx bench/agent.ts`, or through `make bench`.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SiteKind } from '../test/helpers/natlab.js';
import type { AgentLab, AgentNode } from '../test/helpers/agent-lab.js';
import type { Netns } from '../test/helpers/netns.js';
import { addNode, startLab } from '../scripts/demo/cluster.js';
import { startPod } from '../scripts/demo/containers.js';
import { leftovers, teardown } from '../scripts/demo/teardown.js';
import { run, waitFor } from '../test/helpers/sh.js';
import { iperfClient } from '../test/helpers/iperf.js';
import { inNetns } from '../lib/netns.js';
import { execRunner } from '../lib/runner.js';
import { readStatus } from '../node-agent/status.js';
import { uapiAnswers } from '../node-agent/wireguard/uapi.js';
import { fmt, percentile, ratio } from './stats.js';

const RUNS = Number(process.env.WARREN_BENCH_AGENT_RUNS ?? 7);
const TARGET_DIRECT_MS = 2000;
const PING_EVERY_S = 0.05;
const RUN_TIMEOUT_MS = 30_000;
const IPERF_SECONDS = 5;
// wireguard-go on 2 cores varies by +-20% from one 5 s run to the next (it retransmits ~10%
// of segments on every WireGuard path): 10 rounds, in which the five paths after the
// underlay take every place twice, make the medians comparable.
const ROUNDS = Number(process.env.WARREN_BENCH_AGENT_ROUNDS ?? 10);
export const PINGS = 20;
const IPERF_PORT = 5201;

/** Wall-clock ms with sub-ms precision, comparable with `ping -D` timestamps. */
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- 1. time to first packet ----

/** Spawns the node's agent as AgentLab.start does, timing when its status socket answers (polled every 5 ms). */
function spawnAgent(lab: AgentLab, node: AgentNode): Promise<number> {
  const child = lab.spawnAgent(node);
  return (async () => {
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${node.name}'s agent exited with ${child.exitCode}:\n${lab.log(node).slice(-3000)}`);
      // The socket file appears when the agent listens: the moment it answers. Confirmed by one read.
      if (existsSync(node.socket)) {
        const at = now();
        if (await readStatus(node.socket, 1000).then(() => true, () => false)) return at;
      }
      if (Date.now() > deadline) throw new Error(`${node.name}'s agent did not answer within ${RUN_TIMEOUT_MS} ms`);
      await sleep(5);
    }
  })();
}

/**
 * A ping every PING_EVERY_S from `from`'s overlay address to `to`, until the first reply:
 * its receive time (ping -D) and RTT. Until the overlay address exists ping cannot bind
 * to it and exits; it is started again every 50 ms.
 */
function firstReply(from: AgentNode, to: string): { result: Promise<{ at: number; rttMs: number }>; stop: () => void } {
  let stopped = false;
  let child: ChildProcess | undefined;
  const result = new Promise<{ at: number; rttMs: number }>((resolve, reject) => {
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    const attempt = () => {
      if (stopped) return reject(new Error('stopped'));
      if (Date.now() > deadline) return reject(new Error(`no ping reply from ${to} within ${RUN_TIMEOUT_MS} ms`));
      const c = spawn('nsenter', [`--net=${from.site.host.path}`, '--', 'ping', '-D', '-n', '-i', String(PING_EVERY_S), '-I', from.hostAddress, to],
        { stdio: ['ignore', 'pipe', 'ignore'] });
      child = c;
      let buf = '';
      let done = false;
      c.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /^\[(\d+\.\d+)\] \d+ bytes from ([\d.]+): .*time=([\d.]+) ms$/m.exec(buf);
        if (m && m[2] === to && !done) {
          done = true;
          c.kill('SIGTERM');
          resolve({ at: Number(m[1]) * 1000, rttMs: Number(m[3]) });
        }
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
      });
      c.once('exit', () => {
        if (!done) setTimeout(attempt, 50);
      });
    };
    attempt();
  });
  return { result, stop: () => { stopped = true; child?.kill('SIGTERM'); } };
}

interface StartupRun {
  path: string;
  /** First reply after both agents answered. */
  fromUpMs: number;
  /** First reply after both agents were spawned. */
  fromSpawnMs: number;
  /** Spawn to both answering. */
  upMs: number;
}

/** The node's WireGuard interface and its wireguard-go go (the agent leaves both to its successor by design). */
async function removeInterface(node: AgentNode): Promise<void> {
  await node.site.host.exec('ip', ['link', 'del', node.ifname], { allowFailure: true });
  await waitFor(`wireguard-go of ${node.ifname} to exit`, async () => !(await uapiAnswers(node.ifname)), 10_000, 50);
}

async function startupRun(lab: AgentLab, kinds: [SiteKind, SiteKind], name: string): Promise<StartupRun | string> {
  const a = await lab.addNode(kinds[0], `${name}a`);
  const b = await lab.addNode(kinds[1], `${name}b`);
  let probe: ReturnType<typeof firstReply> | undefined;
  try {
    const spawnedAt = now();
    const up = [spawnAgent(lab, a), spawnAgent(lab, b)];
    probe = firstReply(a, b.hostAddress);
    probe.result.catch(() => undefined);
    const upAt = Math.max(...(await Promise.all(up)));
    const reply = await probe.result;
    // The path a settled on (it may still be checking when a first packet gets through).
    let path = 'none';
    await waitFor(`${a.name}'s path to settle`, async () => {
      path = (await lab.status(a)).peers.find((p) => p.node === b.name)?.path ?? 'unknown';
      return path === 'direct' || path === 'relayed';
    }, 10_000, 100).catch(() => undefined);
    return { path, fromUpMs: reply.at - upAt, fromSpawnMs: reply.at - spawnedAt, upMs: upAt - spawnedAt };
  } catch (err) {
    return `${name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  } finally {
    probe?.stop();
    await Promise.all([lab.stop(a), lab.stop(b)]);
    await Promise.all([removeInterface(a), removeInterface(b)]);
    for (const n of [a, b]) await lab.etcd.etcdctl(['del', `/warren/agents/${n.name}`]);
  }
}

function startupLine(label: string, expected: string, runs: (StartupRun | string)[], target?: number): string {
  const ok = runs.filter((r): r is StartupRun => typeof r !== 'string');
  const up = ok.map((r) => r.fromUpMs);
  const spawned = ok.map((r) => r.fromSpawnMs);
  const paths = ok.filter((r) => r.path === expected).length;
  const p50 = percentile(up, 50);
  const verdict = target === undefined ? '' : `   target p50 <= ${target} ms: ${ok.length && p50 <= target ? 'met' : 'MISSED'}`;
  return `  ${label}  from both up p50 ${fmt(p50)} p90 ${fmt(percentile(up, 90))}; from spawn p50 ${fmt(percentile(spawned, 50))} p90 ${fmt(percentile(spawned, 90))}` +
    ` (agents up after p50 ${fmt(percentile(ok.map((r) => r.upMs), 50))}); ${paths}/${runs.length} ${expected}${verdict}\n` +
    `    from both up, each run: ${ok.map((r) => r.fromUpMs.toFixed(0)).join(', ')} ms`;
}

export interface StartupFigures {
  direct: (StartupRun | string)[];
  relayed: (StartupRun | string)[];
}

async function benchStartup(lab: AgentLab): Promise<StartupFigures> {
  const direct: (StartupRun | string)[] = [];
  const relayed: (StartupRun | string)[] = [];
  for (let i = 1; i <= RUNS; i++) {
    direct.push(await startupRun(lab, ['masquerade', 'masquerade'], `d${i}`));
    relayed.push(await startupRun(lab, ['symmetric', 'home-router'], `r${i}`));
  }
  console.log(`\nwarren-agent: first packet over the overlay, ${RUNS} fresh node pairs per path (both agents spawned together; ping every ${PING_EVERY_S * 1000} ms)`);
  console.log(startupLine('direct  (masquerade <-> masquerade)', 'direct', direct, TARGET_DIRECT_MS));
  console.log(startupLine('relayed (symmetric <-> home-router)', 'relayed', relayed));
  for (const f of [...direct, ...relayed]) if (typeof f === 'string') console.log(`  failed run ${f}`);
  return { direct, relayed };
}

// ---- 2. throughput and latency ----

// How the wireguard-go runs matters on this machine more than anything Warren does: the
// kernel's scheduler autogroups (sched_autogroup_enabled=1 here) share the 2 cores between
// sessions, not threads. The agent starts wireguard-go in a session of its own, as any
// service manager starts a daemon; a wireguard-go in the benchmark's own session (with the
// iperf3 processes) is scheduled differently and ran 20% faster in every round. The target
// is judged against raw WireGuard run the way the agent runs it; the other is printed to
// show the effect.
const PATHS = ['underlay', 'overlay', 'raw', 'rawShared', 'pods', 'podsLocal'] as const;
type PathKey = (typeof PATHS)[number];
const LABELS: Record<PathKey, string> = {
  underlay: 'underlay (through the NAT, plain)',
  overlay: 'host overlay (warren-agent)',
  raw: 'raw WireGuard, wireguard-go in its own session',
  rawShared: 'raw WireGuard, wireguard-go in the iperf3 session',
  pods: 'pod to pod across the nodes (OVS, overlay, OVS)',
  podsLocal: 'pod to pod on one node (OVS only)',
};
const RAW_PAIRS = {
  raw: { port: 51830, nat: '172.31.0.1', pub: '172.31.0.2', ownSession: true },
  rawShared: { port: 51831, nat: '172.31.1.1', pub: '172.31.1.2', ownSession: false },
} as const;

interface RawWg {
  child: ChildProcess;
  exited: Promise<void>;
  ifname: string;
  publicKey: string;
  keyFile: string;
}

/** A wireguard-go of its own in `ns` (it makes its TUN, gone with it), keyed by hand. */
async function rawWireguard(ns: Netns, ifname: string, dir: string, ownSession: boolean): Promise<RawWg> {
  const key = (await run('wg', ['genkey'])).trim();
  const publicKey = (await run('wg', ['pubkey'], { input: key })).trim();
  const keyFile = join(dir, `${ifname}.key`);
  writeFileSync(keyFile, key + '\n', { mode: 0o600 });
  const out = openSync(join(dir, `${ifname}.log`), 'a');
  const child = spawn('nsenter', [`--net=${ns.path}`, '--', 'wireguard-go', '-f', ifname], { stdio: ['ignore', out, out], detached: ownSession });
  closeSync(out);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor(`wireguard-go for ${ifname}`, async () => {
    if (child.exitCode !== null) throw new Error(`wireguard-go for ${ifname} exited with ${child.exitCode}`);
    return uapiAnswers(ifname);
  }, 10_000, 20);
  return { child, exited, ifname, publicKey, keyFile };
}

/** A raw WireGuard pair between the two nodes' namespaces: the NATed side knows the public side's address and keeps its mapping open. */
async function rawPair(nat: AgentNode, pub: AgentNode, which: keyof typeof RAW_PAIRS, mtu: number, dir: string, started: RawWg[]): Promise<void> {
  const c = RAW_PAIRS[which];
  const tag = `${process.pid.toString(36)}${which === 'raw' ? 'd' : 's'}`;
  const rn = await rawWireguard(nat.site.host, `rw${tag}n`.slice(0, 15), dir, c.ownSession);
  started.push(rn);
  const rp = await rawWireguard(pub.site.host, `rw${tag}p`.slice(0, 15), dir, c.ownSession);
  started.push(rp);
  await nat.site.host.exec('wg', ['set', rn.ifname, 'listen-port', String(c.port), 'private-key', rn.keyFile,
    'peer', rp.publicKey, 'allowed-ips', `${c.pub}/32`, 'endpoint', `${pub.site.publicAddress}:${c.port}`, 'persistent-keepalive', '25']);
  await pub.site.host.exec('wg', ['set', rp.ifname, 'listen-port', String(c.port), 'private-key', rp.keyFile,
    'peer', rn.publicKey, 'allowed-ips', `${c.nat}/32`]);
  for (const [ns, ifname, address] of [[nat.site.host, rn.ifname, c.nat], [pub.site.host, rp.ifname, c.pub]] as const) {
    await ns.exec('ip', ['addr', 'add', `${address}/24`, 'dev', ifname]);
    await ns.exec('ip', ['link', 'set', ifname, 'mtu', String(mtu), 'up']);
  }
  await waitFor(`raw WireGuard (${which}) to answer`, async () =>
    (await nat.site.host.exec('ping', ['-c', '1', '-W', '1', c.pub], { allowFailure: true })).exitCode === 0, 20_000, 100);
}

/** An iperf3 server in the namespace at `netns`, until stopped. */
async function iperfServer(netns: string, log: string): Promise<() => Promise<void>> {
  const out = openSync(log, 'a');
  const s = spawn('nsenter', [`--net=${netns}`, '--', 'iperf3', '-s', '-p', String(IPERF_PORT)], { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((r) => s.once('exit', () => r()));
  const stop = async () => {
    s.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor('iperf3 server', async () => (await run('nsenter', [`--net=${netns}`, '--', 'ss', '-Hltn'])).includes(`:${IPERF_PORT}`), 10_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

async function iperf(from: string, to: string): Promise<{ gbps: number; retransmits: number }> {
  return iperfClient(inNetns(execRunner, from), to, { port: IPERF_PORT, seconds: IPERF_SECONDS });
}

/** Average RTT of PINGS pings 0.1 s apart from the namespace at `from` (its path) to `to`. */
export async function pingAvg(from: string, to: string): Promise<number> {
  const out = await run('nsenter', [`--net=${from}`, '--', 'ping', '-n', '-q', '-c', String(PINGS), '-i', '0.1', to]);
  const avg = /= [\d.]+\/([\d.]+)\//.exec(out)?.[1];
  if (!avg) throw new Error(`no RTT in ping output: ${out}`);
  return Number(avg);
}

const median = (v: number[]) => percentile(v, 50);

/** Round r's order: the underlay first, then the other paths rotated, so none always follows the same one. */
export function roundOrder(r: number): PathKey[] {
  const rest = PATHS.slice(1);
  return [PATHS[0], ...rest.slice(r % rest.length), ...rest.slice(0, r % rest.length)];
}

export interface ThroughputFigures {
  mtu: number;
  gbps: Record<PathKey, number[]>;
  retransmits: Record<PathKey, number[]>;
  pingMs: Record<PathKey, number[]>;
}

const perPath = (): Record<PathKey, number[]> => ({ underlay: [], overlay: [], raw: [], rawShared: [], pods: [], podsLocal: [] });

async function benchThroughput(lab: AgentLab): Promise<ThroughputFigures> {
  const nat = await addNode(lab, 'home-router', 'tp-nat');
  const pub = await addNode(lab, 'public', 'tp-pub');
  const dir = mkdtempSync(join(tmpdir(), 'warren-bench-rawwg-'));
  const raws: RawWg[] = [];
  const servers: (() => Promise<void>)[] = [];
  try {
    await Promise.all([lab.start(nat), lab.start(pub)]);
    await waitFor('the overlay between tp-nat and tp-pub, direct both ways', async () => {
      const [sn, sp] = await Promise.all([lab.status(nat), lab.status(pub)]);
      return sn.peers[0]?.path === 'direct' && sp.peers[0]?.path === 'direct' && (await lab.ping(nat, pub.hostAddress));
    }, 60_000, 200);
    const links = JSON.parse((await nat.site.host.exec('ip', ['-j', 'link', 'show', nat.ifname])).stdout) as { mtu: number }[];
    const mtu = links[0]!.mtu;
    await rawPair(nat, pub, 'raw', mtu, dir, raws);
    await rawPair(nat, pub, 'rawShared', mtu, dir, raws);
    const [podNat, podPub, podPub2] = [await startPod(nat, 'pn'), await startPod(pub, 'pp'), await startPod(pub, 'pp2')];
    await waitFor('pod to pod across the overlay', async () =>
      (await run('nsenter', [`--net=${podNat.netns}`, '--', 'ping', '-c', '1', '-W', '1', podPub.ip]).then(() => true, () => false)), 20_000, 200);
    servers.push(await iperfServer(pub.site.host.path, join(dir, 'iperf3-host.log')));
    servers.push(await iperfServer(podPub.netns, join(dir, 'iperf3-pod.log')));

    const from = nat.site.host.path;
    const routes: Record<PathKey, [string, string]> = {
      underlay: [from, pub.site.publicAddress],
      overlay: [from, pub.hostAddress],
      raw: [from, RAW_PAIRS.raw.pub],
      rawShared: [from, RAW_PAIRS.rawShared.pub],
      pods: [podNat.netns, podPub.ip],
      podsLocal: [podPub2.netns, podPub.ip],
    };
    const figures: ThroughputFigures = { mtu, gbps: perPath(), retransmits: perPath(), pingMs: perPath() };
    for (let round = 0; round < ROUNDS; round++) {
      for (const k of roundOrder(round)) {
        const r = await iperf(...routes[k]);
        figures.gbps[k].push(r.gbps);
        figures.retransmits[k].push(r.retransmits);
      }
      for (const k of PATHS) figures.pingMs[k].push(await pingAvg(...routes[k]));
    }
    // The overlay really was the agent's direct path all along.
    const [sn, sp] = await Promise.all([lab.status(nat), lab.status(pub)]);
    const paths = `${sn.peers[0]?.path}/${sp.peers[0]?.path}`;

    const g = Object.fromEntries(PATHS.map((k) => [k, median(figures.gbps[k])])) as Record<PathKey, number>;
    const p = Object.fromEntries(PATHS.map((k) => [k, median(figures.pingMs[k])])) as Record<PathKey, number>;
    console.log(`\nwarren-agent: throughput and latency, home-router node -> public node (path ${paths}), overlay MTU ${mtu}; ` +
      `iperf3 TCP 1 stream ${IPERF_SECONDS} s and ping ${PINGS} x 0.1 s, ${ROUNDS} rounds in rotating order, medians`);
    for (const k of [...PATHS.slice(1), PATHS[0]]) {
      console.log(`  ${LABELS[k].padEnd(52)} ${g[k].toFixed(2)} Gbit/s (rounds ${figures.gbps[k].map((x) => x.toFixed(2)).join(', ')}; ` +
        `retransmits ${figures.retransmits[k].join(', ')})   ping avg ${p[k].toFixed(3)} ms`);
    }
    const vsRaw = g.overlay / g.raw;
    console.log(`  host overlay / raw WireGuard ${ratio(g.overlay, g.raw)}   target >= 0.90: ${vsRaw >= 0.9 ? 'met' : 'MISSED'};   overlay / underlay ${ratio(g.overlay, g.underlay)};` +
      `   ping overlay - raw WireGuard ${(p.overlay - p.raw).toFixed(3)} ms`);
    // Adjacent runs of one round: how far this machine's noise goes against the 10% the target allows.
    const byRound = (a: PathKey, b: PathKey) => figures.gbps[a].map((o, i) => (o / figures.gbps[b][i]!).toFixed(2)).join(', ');
    console.log(`  host overlay / raw WireGuard round by round: ${byRound('overlay', 'raw')}`);
    console.log(`  pod to pod across the nodes / raw WireGuard ${ratio(g.pods, g.raw)}, / host overlay ${ratio(g.pods, g.overlay)}; ` +
      `ping pod to pod - host overlay ${(p.pods - p.overlay).toFixed(3)} ms (two passes through userspace OVS)`);
    console.log(`  scheduling effect: raw WireGuard in the iperf3 session / in its own ${ratio(g.rawShared, g.raw)} (round by round ${byRound('rawShared', 'raw')})`);
    return figures;
  } finally {
    for (const stop of servers) await stop();
    for (const r of raws) {
      r.child.kill('SIGTERM');
      await r.exited;
    }
    await Promise.all([lab.stop(nat), lab.stop(pub)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchAgent(): Promise<{ startup: StartupFigures; throughput: ThroughputFigures }> {
  // The demo's cluster: OVS and podman per node; teardown() undoes it all, the lab included.
  try {
    const lab = await startLab();
    const startup = RUNS > 0 ? await benchStartup(lab) : { direct: [], relayed: [] };
    const throughput = await benchThroughput(lab);
    return { startup, throughput };
  } finally {
    const clean = await teardown();
    const left = leftovers();
    if (!clean || left.length) throw new Error(`the agent benchmark left things behind: ${left.join('; ') || 'see the teardown errors above'}`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchAgent();
}
