// ADD and DEL latency of warren-cni against the Go reference `bridge` plugin (both with
// host-local IPAM and masquerading), measured side by side in one run, plus the start
// time of an empty SEA binary: the floor for any Node CLI. warren twice: standalone (its
// conflist names a socket nobody listens on) and through the resident server (`warren
// cni-server` on the node), with the server's memory at rest and after 1,000 ADD/DEL cycles.
//
// The timing loop runs inside the node's namespace (this file re-executes itself under
// `ip netns exec`), so both plugins are spawned the same way, with nothing in between.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealExecutable } from '../scripts/sea.mjs';
import { CniServer } from '../test/helpers/cni-server.js';
import { Netns } from '../test/helpers/netns.js';
import { startOvs } from '../test/helpers/ovs.js';
import { run } from '../test/helpers/sh.js';
import { fmt, ratio, summary } from './stats.js';
import { timedSpawn } from './timed-spawn.js';

const SEQUENTIAL = 200;
const CONCURRENT = 50;
const SOAK_CYCLES = 1_000;
const SOAK_LANES = 10;
const CNI_PATH = '/usr/lib/cni';
const WARREN = resolve('dist/bin/warren-cni');
const BRIDGE = join(CNI_PATH, 'bridge');

interface WorkerInput {
  pods: string[];
  ovsdb: string;
  dataDir: string;
  emptySea: string;
  socket: string;
  serverPid: number;
}

/** Resident set size of a process, from /proc (MiB). */
function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

function configs(input: WorkerInput): Record<string, { bin: string; conf: string }> {
  const ipam = (name: string, subnet: string) => ({ type: 'host-local', dataDir: join(input.dataDir, name), ranges: [[{ subnet }]] });
  const warren = (residentSocket: string) =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'bwarren', type: 'warren', mtu: 1400, podCIDR: '10.244.0.0/16', ovsdb: input.ovsdb, residentSocket, ipam: ipam('w', '10.244.1.0/24') });
  return {
    warren: { bin: WARREN, conf: warren(join(input.dataDir, 'nobody-listens.sock')) },
    resident: { bin: WARREN, conf: warren(input.socket) },
    bridge: {
      bin: BRIDGE,
      conf: JSON.stringify({ cniVersion: '1.0.0', name: 'bbridge', type: 'bridge', bridge: 'bench0', mtu: 1400, isGateway: true, ipMasq: true, ipam: ipam('b', '10.245.1.0/24') }),
    },
  };
}

async function call(bin: string, conf: string, command: string, id: string, netns: string) {
  const r = await timedSpawn(bin, { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH }, conf);
  if (r.code !== 0) throw new Error(`${bin} ${command} ${id} failed: ${r.out}`);
  return r.ms;
}

async function worker(input: WorkerInput): Promise<void> {
  const results: Record<string, unknown> = {};
  const sea: number[] = [];
  for (let i = 0; i < 60; i++) sea.push((await timedSpawn(input.emptySea, {}, '')).ms);
  results.emptySea = summary(sea.slice(10));
  const version: number[] = [];
  for (let i = 0; i < 60; i++) version.push(await call(WARREN, '{"cniVersion":"1.0.0"}', 'VERSION', '', ''));
  results.version = summary(version.slice(10));
  results.rssAtStart = rssMiB(input.serverPid);
  for (const [name, { bin, conf }] of Object.entries(configs(input))) {
    for (let i = 0; i < 5; i++) {
      // warm-up: bridge creation, page cache
      await call(bin, conf, 'ADD', `warm${i}`, input.pods[0]!);
      await call(bin, conf, 'DEL', `warm${i}`, input.pods[0]!);
    }
    const add: number[] = [];
    const del: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const pod = input.pods[i % input.pods.length]!;
      add.push(await call(bin, conf, 'ADD', `seq${i}`, pod));
      del.push(await call(bin, conf, 'DEL', `seq${i}`, pod));
    }
    const t0 = Date.now();
    const cadd = await Promise.all(input.pods.slice(0, CONCURRENT).map((pod, i) => call(bin, conf, 'ADD', `conc${i}`, pod)));
    const addWall = Date.now() - t0;
    const t1 = Date.now();
    const cdel = await Promise.all(input.pods.slice(0, CONCURRENT).map((pod, i) => call(bin, conf, 'DEL', `conc${i}`, pod)));
    const delWall = Date.now() - t1;
    results[name] = { add: summary(add), del: summary(del), concurrentAdd: { ...summary(cadd), wallMs: addWall }, concurrentDel: { ...summary(cdel), wallMs: delWall } };
  }
  const { conf } = configs(input).resident!;
  results.rssAtRest = rssMiB(input.serverPid);
  // SOAK_LANES at a time, each lane its own pod.
  await Promise.all(Array.from({ length: SOAK_LANES }, async (_, lane) => {
    for (let i = lane; i < SOAK_CYCLES; i += SOAK_LANES) {
      await call(WARREN, conf, 'ADD', `soak${i}`, input.pods[lane]!);
      await call(WARREN, conf, 'DEL', `soak${i}`, input.pods[lane]!);
    }
  }));
  results.rssAfterCycles = rssMiB(input.serverPid);
  process.stdout.write(JSON.stringify(results));
}

type S = { p50: number; p99: number; n: number };
type PluginFigures = { add: S; del: S; concurrentAdd: S & { wallMs: number }; concurrentDel: S & { wallMs: number } };

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
      warren: PluginFigures; resident: PluginFigures; bridge: PluginFigures;
    };
    const w = r.warren;
    const b = r.bridge;
    const res = r.resident;
    const refused = server.lines().filter((l) => l.msg === 'refused').length;
    const fenced = server.lines().filter((l) => l.msg === 'fenced').length;
    const served = server.served().length;
    const serverAdd = summary(server.served().filter((l) => l.verb === 'ADD').map((l) => (l as { ms?: number }).ms ?? NaN));
    const addTarget = r.emptySea.p50 + b.add.p50;
    console.log(`\nwarren-cni vs the Go reference bridge plugin (host-local, masquerading), ${SEQUENTIAL} sequential cycles, ${CONCURRENT} concurrent`);
    console.log(`  empty SEA binary start   p50 ${fmt(r.emptySea.p50)}`);
    console.log(`  ADD p50   warren ${fmt(w.add.p50)}   bridge ${fmt(b.add.p50)}   ratio ${ratio(w.add.p50, b.add.p50)}   target <= SEA start + bridge = ${fmt(addTarget)}: ${w.add.p50 <= addTarget ? 'met' : 'MISSED'}`);
    console.log(`  ADD p99   warren ${fmt(w.add.p99)}   bridge ${fmt(b.add.p99)}   ratio ${ratio(w.add.p99, b.add.p99)}`);
    console.log(`  DEL p50   warren ${fmt(w.del.p50)}   bridge ${fmt(b.del.p50)}   ratio ${ratio(w.del.p50, b.del.p50)}   target <= bridge: ${w.del.p50 <= b.del.p50 ? 'met' : 'MISSED'}`);
    console.log(`  DEL p99   warren ${fmt(w.del.p99)}   bridge ${fmt(b.del.p99)}   ratio ${ratio(w.del.p99, b.del.p99)}`);
    console.log(`  ${CONCURRENT} concurrent ADD: wall warren ${w.concurrentAdd.wallMs} ms, bridge ${b.concurrentAdd.wallMs} ms (ratio ${ratio(w.concurrentAdd.wallMs, b.concurrentAdd.wallMs)}); per call p50 ${fmt(w.concurrentAdd.p50)} vs ${fmt(b.concurrentAdd.p50)}, p99 ${fmt(w.concurrentAdd.p99)} vs ${fmt(b.concurrentAdd.p99)}`);
    console.log(`  ${CONCURRENT} concurrent DEL: wall warren ${w.concurrentDel.wallMs} ms, bridge ${b.concurrentDel.wallMs} ms (ratio ${ratio(w.concurrentDel.wallMs, b.concurrentDel.wallMs)}); per call p50 ${fmt(w.concurrentDel.p50)} vs ${fmt(b.concurrentDel.p50)}, p99 ${fmt(w.concurrentDel.p99)} vs ${fmt(b.concurrentDel.p99)}`);
    console.log(`\nthe resident path (warren cni-server) beside the standalone path, Go bridge in the same run; targets of issue 12`);
    console.log(`  the executable's floor: empty SEA start p50 ${fmt(r.emptySea.p50)}, warren VERSION (start, no work, never forwarded) p50 ${fmt(r.version.p50)}`);
    console.log(`  ADD p50   resident ${fmt(res.add.p50)} (${ratio(res.add.p50, b.add.p50)} bridge, target <= 1.0x: ${res.add.p50 <= b.add.p50 ? 'met' : 'MISSED'})   standalone ${fmt(w.add.p50)} (${ratio(w.add.p50, b.add.p50)})   bridge ${fmt(b.add.p50)}`);
    console.log(`  ADD p99   resident ${fmt(res.add.p99)} (${ratio(res.add.p99, b.add.p99)} bridge, target <= 1.2x: ${res.add.p99 <= 1.2 * b.add.p99 ? 'met' : 'MISSED'})   standalone ${fmt(w.add.p99)} (${ratio(w.add.p99, b.add.p99)})   bridge ${fmt(b.add.p99)}`);
    console.log(`  DEL p50   resident ${fmt(res.del.p50)} (${ratio(res.del.p50, b.del.p50)} bridge, target <= 0.8x: ${res.del.p50 <= 0.8 * b.del.p50 ? 'met' : 'MISSED'})   standalone ${fmt(w.del.p50)} (${ratio(w.del.p50, b.del.p50)})   bridge ${fmt(b.del.p50)}`);
    console.log(`  ${CONCURRENT} concurrent ADD wall   resident ${res.concurrentAdd.wallMs} ms (${ratio(res.concurrentAdd.wallMs, b.concurrentAdd.wallMs)} bridge, target <= 1.0x: ${res.concurrentAdd.wallMs <= b.concurrentAdd.wallMs ? 'met' : 'MISSED'})   standalone ${w.concurrentAdd.wallMs} ms (${ratio(w.concurrentAdd.wallMs, b.concurrentAdd.wallMs)})   bridge ${b.concurrentAdd.wallMs} ms`);
    console.log(`  the server's own time per ADD (its log) p50 ${fmt(serverAdd.p50)}, p99 ${fmt(serverAdd.p99)}: the rest of a resident ADD is the executable's start`);
    console.log(`  server RSS: at start ${r.rssAtStart.toFixed(1)} MiB, at rest after the runs above ${r.rssAtRest.toFixed(1)} MiB, after ${SOAK_CYCLES} more ADD/DEL cycles (${SOAK_LANES} at a time) ${r.rssAfterCycles.toFixed(1)} MiB`);
    console.log(`  calls the server served ${served}, refused ${refused} (the request reached it too late), fenced ${fenced} (stalled itself mid-way); the executable did the last two standalone`);
    return { ...r, serverAdd, served, refused, fenced };
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
