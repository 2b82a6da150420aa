// ADD and DEL latency of warren-cni against the Go reference `bridge` plugin (both with
// host-local IPAM and masquerading), measured side by side in one run, on an idle machine
// and again with both cores kept busy by a CPU load the bench starts. warren three ways:
// resident (the shim runtimes execute, handing the call to `warren cni-server`), standalone
// (the same shim with no server to answer: what a node pays while the server is down) and
// the Node executable alone (the plugin before the shim: today's figures to compare with).
// Also: the start of an empty SEA binary (the floor of any Node CLI), the peak memory of one
// call, the server's memory at rest and after 1,000 ADD/DEL cycles, the executables' size.
//
// The timing loop runs inside the node's namespace (this file re-executes itself under
// `ip netns exec`), so every plugin is spawned the same way, with nothing in between.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealExecutable } from '../scripts/sea.mjs';
import { CniServer } from '../test/helpers/cni-server.js';
import { Netns } from '../test/helpers/netns.js';
import { startOvs } from '../test/helpers/ovs.js';
import { run } from '../test/helpers/sh.js';
import { fmt, ratio, summary } from './stats.js';
import { peakSpawn, timedSpawn } from './timed-spawn.js';

const SEQUENTIAL = 200;
const LOADED_SEQUENTIAL = 100;
const CONCURRENT = 50;
const SOAK_CYCLES = 1_000;
const SOAK_LANES = 10;
const MEMORY_CALLS = 10;
const CNI_PATH = '/usr/lib/cni';
const SHIM = resolve('dist/cni/warren');
const SEA = resolve('dist/bin/warren');
const SEA_CNI = resolve('dist/bin/warren-cni');
const SPAWNER = resolve('dist/bin/warren-spawner');
const BRIDGE = join(CNI_PATH, 'bridge');

interface WorkerInput {
  pods: string[];
  ovsdb: string;
  dataDir: string;
  emptySea: string;
  socket: string;
  serverPid: number;
}

type Plugin = 'resident' | 'standalone' | 'sea' | 'bridge';
type S = { p50: number; p99: number; n: number };
type PluginFigures = { add: S; del: S; concurrentAdd: S & { wallMs: number }; concurrentDel: S & { wallMs: number } };

/** Resident set size of a process, from /proc (MiB). */
function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

function configs(input: WorkerInput): Record<Plugin, { bin: string; conf: string }> {
  const ipam = (name: string, subnet: string) => ({ type: 'host-local', dataDir: join(input.dataDir, name), ranges: [[{ subnet }]] });
  const warren = (residentSocket: string) =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'bwarren', type: 'warren', mtu: 1400, podCIDR: '10.244.0.0/16', ovsdb: input.ovsdb, residentSocket, ipam: ipam('w', '10.244.1.0/24') });
  const nobody = join(input.dataDir, 'nobody-listens.sock');
  return {
    resident: { bin: SHIM, conf: warren(input.socket) },
    standalone: { bin: SHIM, conf: warren(nobody) },
    sea: { bin: SEA_CNI, conf: warren(nobody) },
    bridge: {
      bin: BRIDGE,
      conf: JSON.stringify({ cniVersion: '1.0.0', name: 'bbridge', type: 'bridge', bridge: 'bench0', mtu: 1400, isGateway: true, ipMasq: true, ipam: ipam('b', '10.245.1.0/24') }),
    },
  };
}

const cniEnv = (command: string, id: string, netns: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH });

async function call(bin: string, conf: string, command: string, id: string, netns: string) {
  const r = await timedSpawn(bin, cniEnv(command, id, netns), conf);
  if (r.code !== 0) throw new Error(`${bin} ${command} ${id} failed: ${r.out}`);
  return r.ms;
}

/** Peak RSS of one ADD's process (GNU time: the largest of it and the children it waited for), MiB. */
async function peakMiB(bin: string, conf: string, id: string, netns: string): Promise<number> {
  const r = await peakSpawn(bin, cniEnv('ADD', id, netns), conf);
  if (r.code !== 0) throw new Error(`${bin} ADD ${id} failed: ${r.out}`);
  return r.peakKb / 1024;
}

/**
 * Sequential ADD/DEL cycles of every plugin, interleaved cycle by cycle so that a machine
 * whose speed drifts (shared cores) moves all of them alike; then a burst of concurrent
 * ADDs and one of DELs per plugin.
 */
async function figures(plugins: Partial<Record<Plugin, { bin: string; conf: string }>>, pods: string[], sequential: number, tag: string) {
  const entries = Object.entries(plugins);
  for (const [name, { bin, conf }] of entries) {
    for (let i = 0; i < 5; i++) {
      // warm-up: bridge creation, page cache
      await call(bin, conf, 'ADD', `${tag}${name}warm${i}`, pods[0]!);
      await call(bin, conf, 'DEL', `${tag}${name}warm${i}`, pods[0]!);
    }
  }
  const add = new Map(entries.map(([name]) => [name, [] as number[]]));
  const del = new Map(entries.map(([name]) => [name, [] as number[]]));
  for (let i = 0; i < sequential; i++) {
    const pod = pods[i % pods.length]!;
    for (const [name, { bin, conf }] of entries) {
      add.get(name)!.push(await call(bin, conf, 'ADD', `${tag}${name}seq${i}`, pod));
      del.get(name)!.push(await call(bin, conf, 'DEL', `${tag}${name}seq${i}`, pod));
    }
  }
  const out: Record<string, PluginFigures> = {};
  for (const [name, { bin, conf }] of entries) {
    const t0 = Date.now();
    const cadd = await Promise.all(pods.slice(0, CONCURRENT).map((pod, i) => call(bin, conf, 'ADD', `${tag}${name}conc${i}`, pod)));
    const addWall = Date.now() - t0;
    const t1 = Date.now();
    const cdel = await Promise.all(pods.slice(0, CONCURRENT).map((pod, i) => call(bin, conf, 'DEL', `${tag}${name}conc${i}`, pod)));
    const delWall = Date.now() - t1;
    out[name] = { add: summary(add.get(name)!), del: summary(del.get(name)!), concurrentAdd: { ...summary(cadd), wallMs: addWall }, concurrentDel: { ...summary(cdel), wallMs: delWall } };
  }
  return out;
}

/** One busy loop per core, at the bench's own priority: the busy edge node of issue 12. */
function cpuLoad(): ChildProcess[] {
  return cpus().map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
}

async function worker(input: WorkerInput): Promise<void> {
  const results: Record<string, unknown> = {};
  const sea: number[] = [];
  for (let i = 0; i < 60; i++) sea.push((await timedSpawn(input.emptySea, {}, '')).ms);
  results.emptySea = summary(sea.slice(10));
  const version: number[] = [];
  for (let i = 0; i < 60; i++) version.push(await call(SHIM, '{"cniVersion":"1.0.0"}', 'VERSION', '', ''));
  results.version = summary(version.slice(10));
  results.rssAtStart = rssMiB(input.serverPid);
  const all = configs(input);
  results.quiet = await figures(all, input.pods, SEQUENTIAL, 'q');
  const peak: Record<string, number> = {};
  for (const [name, { bin, conf }] of Object.entries(all)) {
    let max = 0;
    for (let i = 0; i < MEMORY_CALLS; i++) {
      max = Math.max(max, await peakMiB(bin, conf, `mem${name}${i}`, input.pods[i]!));
      await call(bin, conf, 'DEL', `mem${name}${i}`, input.pods[i]!);
    }
    peak[name] = max;
  }
  results.peakMiB = peak;
  const load = cpuLoad();
  try {
    results.loaded = await figures({ resident: all.resident, standalone: all.standalone, bridge: all.bridge }, input.pods, LOADED_SEQUENTIAL, 'l');
  } finally {
    for (const p of load) p.kill('SIGKILL');
  }
  results.rssAtRest = rssMiB(input.serverPid);
  // SOAK_LANES at a time, each lane its own pod.
  await Promise.all(Array.from({ length: SOAK_LANES }, async (_, lane) => {
    for (let i = lane; i < SOAK_CYCLES; i += SOAK_LANES) {
      await call(SHIM, all.resident.conf, 'ADD', `soak${i}`, input.pods[lane]!);
      await call(SHIM, all.resident.conf, 'DEL', `soak${i}`, input.pods[lane]!);
    }
  }));
  results.rssAfterCycles = rssMiB(input.serverPid);
  process.stdout.write(JSON.stringify(results));
}


const mark = (met: boolean): string => (met ? 'met' : 'MISSED');

/** The issue's targets for one phase: resident against bridge, the standalone path and the Node executable alone beside it. */
function printPhase(title: string, f: Record<string, PluginFigures>, addP50Target: number): void {
  const { resident: res, standalone: alone, bridge: b, sea } = f as Record<Plugin, PluginFigures>;
  const beside = (pick: (x: PluginFigures) => number) =>
    `standalone ${fmt(pick(alone))} (${ratio(pick(alone), pick(b))})${sea ? `   Node executable alone ${fmt(pick(sea))} (${ratio(pick(sea), pick(b))})` : ''}   bridge ${fmt(pick(b))}`;
  console.log(`  ${title}`);
  console.log(`    ADD p50   resident ${fmt(res.add.p50)} (${ratio(res.add.p50, b.add.p50)} bridge, target <= ${addP50Target.toFixed(1)}x: ${mark(res.add.p50 <= addP50Target * b.add.p50)})   ${beside((x) => x.add.p50)}`);
  console.log(`    ADD p99   resident ${fmt(res.add.p99)} (${ratio(res.add.p99, b.add.p99)} bridge, target <= 1.2x: ${mark(res.add.p99 <= 1.2 * b.add.p99)})   ${beside((x) => x.add.p99)}`);
  console.log(`    DEL p50   resident ${fmt(res.del.p50)} (${ratio(res.del.p50, b.del.p50)} bridge, target <= 0.8x: ${mark(res.del.p50 <= 0.8 * b.del.p50)})   ${beside((x) => x.del.p50)}`);
  const wall = (x: PluginFigures) => x.concurrentAdd.wallMs;
  console.log(`    ${CONCURRENT} concurrent ADDs, wall   resident ${wall(res)} ms (${ratio(wall(res), wall(b))} bridge, target <= 1.0x: ${mark(wall(res) <= wall(b))})   standalone ${wall(alone)} ms (${ratio(wall(alone), wall(b))})${sea ? `   Node executable alone ${wall(sea)} ms (${ratio(wall(sea), wall(b))})` : ''}   bridge ${wall(b)} ms`);
  const dwall = (x: PluginFigures) => x.concurrentDel.wallMs;
  console.log(`    ${CONCURRENT} concurrent DELs, wall   resident ${dwall(res)} ms (${ratio(dwall(res), dwall(b))} bridge)   standalone ${dwall(alone)} ms   bridge ${dwall(b)} ms`);
}

const mb = (path: string): number => statSync(path).size / 1e6;

export async function benchCni(): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'warren-bench-'));
  const node = await Netns.create('bnode');
  const ovs = await startOvs(node);
  const pods = await Promise.all(Array.from({ length: CONCURRENT }, () => Netns.create('bpod')));
  const server = await CniServer.start(node, join(work, 'cni.sock'));
  try {
    writeFileSync(join(work, 'empty.cjs'), '');
    const emptySea = join(work, 'empty-sea');
    sealExecutable({ main: join(work, 'empty.cjs'), output: emptySea, workDir: work });
    mkdirSync(join(work, 'ipam'));
    const input: WorkerInput = { pods: pods.map((p) => p.path), ovsdb: ovs.db, dataDir: join(work, 'ipam'), emptySea, socket: server.socket, serverPid: server.pid };
    const out = await run('ip', ['netns', 'exec', node.name, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url)],
      { env: { WARREN_BENCH_WORKER: JSON.stringify(input) } });
    const r = JSON.parse(out) as {
      emptySea: S; version: S; rssAtStart: number; rssAtRest: number; rssAfterCycles: number;
      quiet: Record<Plugin, PluginFigures>; loaded: Record<Plugin, PluginFigures>; peakMiB: Record<Plugin, number>;
    };
    const spawnerPid = (server.lines().find((l) => l.msg === 'listening') as { spawner?: number } | undefined)?.spawner;
    const spawnerRss = spawnerPid === undefined ? undefined : rssMiB(spawnerPid);
    const refused = server.lines().filter((l) => l.msg === 'refused').length;
    const fenced = server.lines().filter((l) => l.msg === 'fenced').length;
    const served = server.served().length;
    const serverAdd = summary(server.served().filter((l) => l.verb === 'ADD').map((l) => (l as { ms?: number }).ms ?? NaN));
    console.log(`\nwarren-cni vs the Go reference bridge plugin (host-local, masquerading); issue 12's targets`);
    console.log(`  the Node floor: an empty SEA binary starts in ${fmt(r.emptySea.p50)} (p50); the shim answering VERSION (it execs the Node executable) ${fmt(r.version.p50)}`);
    printPhase(`idle machine, ${SEQUENTIAL} sequential ADD/DEL cycles, ${CONCURRENT} concurrent`, r.quiet, 1.0);
    printPhase(`both cores kept busy by ${cpus().length} busy loops, ${LOADED_SEQUENTIAL} sequential cycles, ${CONCURRENT} concurrent`, r.loaded, 1.3);
    const p = r.peakMiB;
    console.log(`  peak memory of one ADD (largest process, max of ${MEMORY_CALLS}): resident ${p.resident.toFixed(1)} MiB (the shim; the server's below), standalone ${p.standalone.toFixed(1)} MiB, Node executable alone ${p.sea.toFixed(1)} MiB, bridge ${p.bridge.toFixed(1)} MiB (or its host-local)`);
    console.log(`  the server's own time per ADD (its log) p50 ${fmt(serverAdd.p50)}, p99 ${fmt(serverAdd.p99)}`);
    console.log(`  server RSS: at start ${r.rssAtStart.toFixed(1)} MiB, at rest after the runs above ${r.rssAtRest.toFixed(1)} MiB, after ${SOAK_CYCLES} more ADD/DEL cycles (${SOAK_LANES} at a time) ${r.rssAfterCycles.toFixed(1)} MiB; its warren-spawner ${spawnerRss === undefined ? 'absent' : `${spawnerRss.toFixed(1)} MiB`}`);
    console.log(`  calls the server served ${served}, refused ${refused} (the request reached it too late), fenced ${fenced} (stalled itself mid-way); the shim ran the last two standalone`);
    console.log(`  executables a node needs: warren ${mb(SEA).toFixed(1)} MB + the shim ${mb(SHIM).toFixed(2)} MB + warren-spawner ${mb(SPAWNER).toFixed(2)} MB = ${(mb(SEA) + mb(SHIM) + mb(SPAWNER)).toFixed(1)} MB (Go bridge ${mb(BRIDGE).toFixed(1)} MB, host-local ${mb(join(CNI_PATH, 'host-local')).toFixed(1)} MB)`);
    return { ...r, serverAdd, served, refused, fenced, spawnerRss };
  } finally {
    await server.stop();
    await Promise.all(pods.map((p) => p.destroy()));
    await ovs.stop();
    await node.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.env.WARREN_BENCH_WORKER) {
  await worker(JSON.parse(process.env.WARREN_BENCH_WORKER) as WorkerInput);
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchCni();
}
