// `make soak` (not part of `make test`): churn and crashes on one emulated node, the
// NodeFixture the CNI tests use (its own namespace, OVS and host-local directory), running
// the built warren-cni.
//
// Phase 1: SOAK_CYCLES (10,000) ADD/DEL cycles, SOAK_PARALLEL (20) at a time, each worker on
// its own pod namespace. Every ~500 cycles: the RSS of the node's resident processes
// (ovs-vswitchd, ovsdb-server) and the throughput. Afterwards the node must equal its
// snapshot taken after a warm-up: no veth, OVS port, host-local address or nft rule more.
//
// Phase 2: SOAK_KILLS (200) ADDs, each SIGKILLed at a random moment (uniform over 0..p95 of
// phase 1's ADD), each in a namespace of its own. Half are followed at once by a DEL (as a
// runtime does when an ADD fails), half are left for one GC at the end (cniVersion 1.1.0,
// cni.dev/valid-attachments []). Their namespaces stay until everything is checked, so that a
// veth the plugin forgot is seen (deleting the namespace would take the pair with it).
// A killed plugin's children (host-local, ip, nsenter) live on and finish their work: before
// the checks, the soak waits for every process that carries a killed call's CNI_CONTAINERID.
//
// Exits non-zero on any failed call, any residue, or RSS growth beyond the rule printed.
// Other knobs: SOAK_SEED (the kill moments again), SOAK_KILL_MAX_MS (the kill window),
// SOAK_SAMPLE_EVERY (cycles between RSS samples). Ctrl-C stops the cycles and still cleans up.
//   SOAK_CYCLES=400 SOAK_PARALLEL=20 SOAK_KILLS=30 npx tsx bench/soak.ts
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { readHostLocalAllocations } from '../cni/verbs/gc.js';
import { hostVethName } from '../cni/naming.js';
import { execRunner } from '../lib/runner.js';
import { catchSignals, interrupted } from '../scripts/demo/teardown.js';
import { NodeFixture } from '../test/integration/cni/fixture.js';
import type { Netns } from '../test/helpers/netns.js';
import { nodeState, type NodeState } from '../test/helpers/node-state.js';
import { CNI_PATH, WARREN_CNI, type PluginReply } from '../test/helpers/plugin.js';
import { waitFor } from '../test/helpers/sh.js';
import {
  describeRule, environHas, environHasPrefix, FailureLog, formatResidue, formatRss, formatTally, intKnob, isFailure, mib,
  piecesKey, residue, residueCount, rssVerdict, seededRandom, startMiddleEnd, vmRssKiB, type Pieces, type Residue,
} from './soak-figures.js';
import { fmt, percentile } from './stats.js';

const CYCLES = intKnob(process.env, 'SOAK_CYCLES', 10_000);
const PARALLEL = Math.max(1, intKnob(process.env, 'SOAK_PARALLEL', 20));
const KILLS = intKnob(process.env, 'SOAK_KILLS', 200);
const SAMPLE_EVERY = Math.max(1, intKnob(process.env, 'SOAK_SAMPLE_EVERY', Math.min(500, Math.ceil(CYCLES / 8))));
const SEED = intKnob(process.env, 'SOAK_SEED', Math.floor(Math.random() * 2 ** 31));
/** Kill moments are uniform over 0..this; default: phase 1's ADD p95 (150 ms if it has none). */
const KILL_MAX_MS = process.env.SOAK_KILL_MAX_MS ? intKnob(process.env, 'SOAK_KILL_MAX_MS', 150) : undefined;
/** No call may take longer: a hang is a failure, not a wait. */
const CALL_TIMEOUT_MS = 120_000;
const RESIDENT = ['ovs-vswitchd', 'ovsdb-server'] as const;
type Resident = (typeof RESIDENT)[number];

interface RssSample {
  label: string;
  cycles: number;
  elapsedS: number;
  kib: Record<Resident, number>;
}

// ---- the node ------------------------------------------------------------------------

function residentPids(fx: NodeFixture): Record<Resident, number> {
  const out = {} as Record<Resident, number>;
  for (const d of RESIDENT) out[d] = Number(readFileSync(`${fx.ovs.dir}/${d}.pid`, 'utf8').trim());
  return out;
}

function rssKiB(pid: number): number {
  const kib = vmRssKiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return kib;
}

/** Pids of processes whose environment holds CNI_CONTAINERID=id (exactly, or as a prefix). */
function processesOf(id: string, prefix = false): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue; // exited
    }
    if (prefix ? environHasPrefix(environ, 'CNI_CONTAINERID', id) : environHas(environ, 'CNI_CONTAINERID', id)) found.push(Number(entry));
  }
  return found;
}

/** The host veth, OVS port and address of one attachment, as the node has them now. */
async function pieces(fx: NodeFixture, containerId: string): Promise<Pieces> {
  const name = hostVethName(containerId, 'eth0');
  const [link, port] = await Promise.all([
    execRunner('ip', ['-n', fx.node.name, 'link', 'show', 'dev', name], { allowFailure: true }),
    execRunner('ovs-vsctl', [`--db=${fx.ovs.db}`, '--no-headings', '--columns=name', 'find', 'Interface', `name=${name}`], { allowFailure: true }),
  ]);
  return {
    veth: link.exitCode === 0,
    port: port.exitCode === 0 && port.stdout.trim() !== '',
    address: readHostLocalAllocations(fx.ipamDir).some((a) => a.containerId === containerId),
  };
}

/** What of `ids` the node still has: host veths, OVS ports, addresses. */
function ownedBy(state: NodeState, fx: NodeFixture, ids: readonly string[]): { veths: string[]; ports: string[]; allocations: string[] } {
  const names = new Set(ids.map((id) => hostVethName(id, 'eth0')));
  const idSet = new Set(ids);
  return {
    veths: state.links.filter((l) => names.has(l)),
    ports: state.ovsInterfaces.filter((p) => names.has(p)),
    allocations: readHostLocalAllocations(fx.ipamDir).filter((a) => idSet.has(a.containerId)).map((a) => a.ip),
  };
}

async function onlyLoopback(pods: readonly Netns[]): Promise<string[]> {
  const bad: string[] = [];
  for (let i = 0; i < pods.length; i += 20) {
    await Promise.all(pods.slice(i, i + 20).map(async (p) => {
      const links = (JSON.parse((await execRunner('ip', ['-n', p.name, '-json', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
      if (links.join() !== 'lo') bad.push(`${p.name}: ${links.join(' ')}`);
    }));
  }
  return bad;
}

// ---- calls ---------------------------------------------------------------------------

/** fx.cni, timed; a call that hangs past the timeout comes back as a failure instead of throwing. */
async function timed(fx: NodeFixture, call: Parameters<NodeFixture['cni']>[0]): Promise<PluginReply & { ms: number }> {
  const t0 = performance.now();
  try {
    const r = await fx.cni({ timeoutMs: CALL_TIMEOUT_MS, ...call });
    return { ...r, ms: performance.now() - t0 };
  } catch (err) {
    return { exitCode: -1, stdout: String(err), json: undefined, ms: performance.now() - t0 };
  }
}

interface Killed {
  /** SIGKILL landed while the plugin ran (else it had exited first, with this code). */
  killed: boolean;
  exitCode: number | null;
  atMs: number;
  stdout: string;
}

/** Spawns an ADD as plugin.ts does (ip netns exec NODE warren-cni) and SIGKILLs it after `delayMs`. */
function addKilledAfter(fx: NodeFixture, config: Record<string, unknown>, containerId: string, netns: string, delayMs: number): Promise<Killed> {
  return new Promise((resolve, reject) => {
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH, PATH: process.env.PATH ?? '' };
    const t0 = performance.now();
    // `ip netns exec` execs the plugin in place: the pid is the plugin's once it runs.
    const child = spawn('ip', ['netns', 'exec', fx.node.name, WARREN_CNI], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stdin.on('error', () => {}); // killed before it read its config
    child.stdin.end(JSON.stringify(config));
    const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', exitCode: code, atMs: performance.now() - t0, stdout });
    });
  });
}

// ---- the soak ------------------------------------------------------------------------

async function soak(): Promise<number> {
  catchSignals();
  const reasons: string[] = [];
  const random = seededRandom(SEED);
  const prefix = `soak${process.pid.toString(36)}`;
  console.log(`warren-cni soak: ${CYCLES} ADD/DEL cycles, ${PARALLEL} in parallel; ${KILLS} ADDs SIGKILLed (seed ${SEED})`);
  const fx = await NodeFixture.start();
  try {
    const config = fx.config();
    const pods = await Promise.all(Array.from({ length: PARALLEL }, () => fx.pod()));
    const pids = residentPids(fx);
    const tAll = performance.now();
    let t0 = tAll;
    const samples: RssSample[] = [];
    const sample = (label: string, cycles: number): RssSample => {
      const kib = {} as Record<Resident, number>;
      for (const d of RESIDENT) kib[d] = rssKiB(pids[d]);
      const s = { label, cycles, elapsedS: (performance.now() - t0) / 1000, kib };
      samples.push(s);
      return s;
    };

    // Warm-up: the bridge and masquerade rule come with the first pod; one round at full
    // parallelism gives OVS its working set before the first RSS sample.
    const warmFailures = new FailureLog();
    const first = await timed(fx, { command: 'ADD', config, containerId: `${prefix}-warm`, netns: pods[0]!.path });
    if (isFailure(first)) warmFailures.add(`ADD warm: ${first.stdout}`);
    const firstDel = await timed(fx, { command: 'DEL', config, containerId: `${prefix}-warm`, netns: pods[0]!.path });
    if (isFailure(firstDel)) warmFailures.add(`DEL warm: ${firstDel.stdout}`);
    await Promise.all(pods.map(async (pod, i) => {
      const id = `${prefix}-warm-${i}`;
      const add = await timed(fx, { command: 'ADD', config, containerId: id, netns: pod.path });
      if (isFailure(add)) warmFailures.add(`ADD ${id}: ${add.stdout}`);
      const del = await timed(fx, { command: 'DEL', config, containerId: id, netns: pod.path });
      if (isFailure(del)) warmFailures.add(`DEL ${id}: ${del.stdout}`);
    }));
    if (warmFailures.count > 0) throw new Error(`the warm-up failed: ${warmFailures.first.join('\n')}`);
    const baseline = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    console.log(`  snapshot after the warm-up: ${baseline.links.length} links (${baseline.links.join(' ')}), ${baseline.ovsInterfaces.length} OVS interfaces, ${baseline.allocations.length} addresses, ${baseline.nftRules} nft rules`);

    // ---- phase 1: churn ----
    t0 = performance.now();
    const start = sample('start', 0);
    const printSample = (s: RssSample, rate: string): void =>
      console.log(`  ${String(s.cycles).padStart(6)} cycles  ${s.elapsedS.toFixed(1).padStart(7)} s  ${rate}  ${RESIDENT.map((d) => `${d} ${mib(s.kib[d])} MiB`).join('  ')}`);
    printSample(start, '');
    const failures = new FailureLog();
    const addMs: number[] = [];
    const delMs: number[] = [];
    let next = 0;
    let done = 0;
    let lastAt = { cycles: 0, s: 0 };
    const p1Start = performance.now();
    await Promise.all(pods.map(async (pod) => {
      for (;;) {
        if (interrupted) return;
        const n = next++;
        if (n >= CYCLES) return;
        const id = `${prefix}-${n}`;
        const add = await timed(fx, { command: 'ADD', config, containerId: id, netns: pod.path });
        if (isFailure(add)) failures.add(`ADD ${id}: exit ${add.exitCode}: ${add.stdout.trim()}`);
        else addMs.push(add.ms);
        // DEL even after a failed ADD, as a runtime does.
        const del = await timed(fx, { command: 'DEL', config, containerId: id, netns: pod.path });
        if (isFailure(del)) failures.add(`DEL ${id}: exit ${del.exitCode}: ${del.stdout.trim()}`);
        else delMs.push(del.ms);
        done++;
        if (done % SAMPLE_EVERY === 0 || done === CYCLES) {
          const s = sample(`${done} cycles`, done);
          const rate = (done - lastAt.cycles) / (s.elapsedS - lastAt.s);
          lastAt = { cycles: done, s: s.elapsedS };
          printSample(s, `${rate.toFixed(1).padStart(5)} cycles/s`);
        }
      }
    }));
    const p1WallS = (performance.now() - p1Start) / 1000;
    const p1End = samples[samples.length - 1]!;
    const afterChurn = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    const churnResidue = residue(baseline, afterChurn);
    const churnPods = await onlyLoopback(pods);
    if (interrupted) reasons.push(`interrupted by ${interrupted} after ${done} cycles`);

    // ---- phase 2: kills ----
    const addP95 = percentile(addMs, 95);
    const killMax = KILL_MAX_MS ?? (Number.isFinite(addP95) ? Math.round(addP95) : 150);
    console.log(`\n  phase 2: ${KILLS} ADDs killed at a uniform moment in 0..${killMax} ms${KILL_MAX_MS === undefined ? ' (p95 of phase 1\'s ADD)' : ''}, ${PARALLEL} at a time`);
    const killPods: Netns[] = [];
    for (let i = 0; i < KILLS && !interrupted; i += 20) killPods.push(...await Promise.all(Array.from({ length: Math.min(20, KILLS - i) }, () => fx.pod())));
    interface KillRecord extends Killed {
      id: string;
      path: 'DEL' | 'GC';
      netns: string;
      delayMs: number;
      orphans: number;
      before: Pieces;
      afterDel?: Pieces;
    }
    const kills: KillRecord[] = [];
    const killFailures = new FailureLog();
    const delays = Array.from({ length: KILLS }, () => random() * killMax);
    let nextKill = 0;
    const p2Start = performance.now();
    await Promise.all(Array.from({ length: Math.min(PARALLEL, KILLS) }, async () => {
      for (;;) {
        if (interrupted) return;
        const k = nextKill++;
        if (k >= KILLS) return;
        const id = `${prefix}-kill-${k}`;
        const path = k % 2 === 0 ? 'DEL' : 'GC';
        const netns = killPods[k]!.path;
        const r = await addKilledAfter(fx, config, id, netns, delays[k]!);
        // Children of the killed plugin still at work (host-local, ip, nsenter...).
        const orphans = processesOf(id).length;
        if (!r.killed && r.exitCode !== 0) killFailures.add(`ADD ${id} (ended before its kill): exit ${r.exitCode}: ${r.stdout.trim()}`);
        const before = await pieces(fx, id);
        const rec: KillRecord = { ...r, id, path, netns: killPods[k]!.name, delayMs: delays[k]!, orphans, before };
        if (path === 'DEL') {
          const del = await timed(fx, { command: 'DEL', config, containerId: id, netns });
          if (isFailure(del)) killFailures.add(`DEL after kill ${id}: exit ${del.exitCode}: ${del.stdout.trim()}`);
          rec.afterDel = await pieces(fx, id);
        }
        kills.push(rec);
      }
    }));
    // Orphans first: what they still do would otherwise land after the checks.
    let orphansLeft: number[] = [];
    try {
      await waitFor('the killed plugins\' children to finish', () => (orphansLeft = processesOf(`${prefix}-kill-`, true)).length === 0, 60_000, 100);
    } catch {
      reasons.push(`children of killed plugins still running after 60 s: pids ${orphansLeft.join(' ')}`);
    }
    const delIds = kills.filter((k) => k.path === 'DEL').map((k) => k.id);
    const gcIds = kills.filter((k) => k.path === 'GC').map((k) => k.id);
    const beforeGc = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    const delLeft = ownedBy(beforeGc, fx, delIds);
    const gcBefore = ownedBy(beforeGc, fx, gcIds);
    const gc = await timed(fx, { command: 'GC', config: fx.config({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }) });
    if (isFailure(gc)) killFailures.add(`GC: exit ${gc.exitCode}: ${gc.stdout.trim()}`);
    const afterGc = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    const gcLeft = ownedBy(afterGc, fx, gcIds);
    const killResidue = residue(baseline, afterGc);
    const killPodsLeft = await onlyLoopback(killPods);
    const p2WallS = (performance.now() - p2Start) / 1000;
    const p2End = sample('after phase 2', done);

    // ---- figures ----
    const wallS = (performance.now() - tAll) / 1000;
    console.log('\nPhase 1: churn');
    console.log(`  cycles ${done} of ${CYCLES}, ${PARALLEL} in parallel, wall ${p1WallS.toFixed(1)} s, ${(done / p1WallS).toFixed(1)} ADD+DEL per second`);
    console.log(`  ADD p50 ${fmt(percentile(addMs, 50))}  p95 ${fmt(addP95)}  p99 ${fmt(percentile(addMs, 99))}   DEL p50 ${fmt(percentile(delMs, 50))}  p95 ${fmt(percentile(delMs, 95))}  p99 ${fmt(percentile(delMs, 99))}`);
    console.log(`  failures ${failures.count}${failures.first.map((f) => `\n    ${f}`).join('')}`);
    console.log(`  residue vs snapshot: ${formatResidue(churnResidue)}`);
    console.log(`  pod namespaces with more than lo: ${churnPods.length}${churnPods.map((p) => `\n    ${p}`).join('')}`);

    console.log('\nPhase 2: killed ADDs');
    const landed = kills.filter((k) => k.killed);
    const completed = kills.filter((k) => !k.killed);
    const completedMs = completed.map((k) => k.atMs);
    console.log(`  kills ${kills.length}: ${landed.length} landed while the plugin ran (${landed.filter((k) => !k.before.veth).length} before its veth existed, `
      + `${landed.filter((k) => k.before.veth).length} after), ${completed.length} after it had exited (${formatTally(completed.map((k) => `exit ${k.exitCode}`))}`
      + `${completed.length > 0 ? `, in p50 ${fmt(percentile(completedMs, 50))}, max ${fmt(Math.max(...completedMs))}` : ''}); wall ${p2WallS.toFixed(1)} s`);
    console.log(`  killed plugins that left children running: ${landed.filter((k) => k.orphans > 0).length}`);
    console.log('  on the node just after each kill that landed (what the killed ADD had made):');
    for (const half of ['DEL', 'GC'] as const) {
      const rs = kills.filter((k) => k.path === half);
      console.log(`    ${`${half} half:`.padEnd(9)} ${formatTally(rs.filter((k) => k.killed).map((k) => piecesKey(k.before)))}; ADD completed before the kill ${rs.filter((k) => !k.killed).length}`);
    }
    const count = (rs: KillRecord[], f: (p: Pieces) => boolean): number => rs.filter((r) => f(r.before)).length;
    const delRecs = kills.filter((k) => k.path === 'DEL');
    const delRemoved = {
      veths: delRecs.filter((r) => r.before.veth && !r.afterDel?.veth).length,
      ports: delRecs.filter((r) => r.before.port && !r.afterDel?.port).length,
      addresses: delRecs.filter((r) => r.before.address && !r.afterDel?.address).length,
    };
    console.log(`  DEL path (${delRecs.length}): found ${count(delRecs, (p) => p.veth)} veths, ${count(delRecs, (p) => p.port)} ports, ${count(delRecs, (p) => p.address)} addresses; DEL removed ${delRemoved.veths}, ${delRemoved.ports}, ${delRemoved.addresses}`);
    console.log(`    left once the killed plugins' children were done: veths ${delLeft.veths.length}, ports ${delLeft.ports.length}, addresses ${delLeft.allocations.length}`);
    console.log(`  GC path (${gcIds.length}): before GC veths ${gcBefore.veths.length}, ports ${gcBefore.ports.length}, addresses ${gcBefore.allocations.length}; `
      + `GC removed ${gcBefore.veths.length - gcLeft.veths.length}, ${gcBefore.ports.length - gcLeft.ports.length}, ${gcBefore.allocations.length - gcLeft.allocations.length} `
      + `(GC: exit ${gc.exitCode}, ${fmt(gc.ms)})`);
    console.log(`  failures ${killFailures.count}${killFailures.first.map((f) => `\n    ${f}`).join('')}`);
    console.log(`  residue vs snapshot after DEL and GC: ${formatResidue(killResidue)}`);
    console.log(`  pod namespaces with more than lo: ${killPodsLeft.length}${killPodsLeft.slice(0, 5).map((p) => `\n    ${p}`).join('')}`);
    // Evidence for each leftover that one of the kills owns: which kill, when, what it had made.
    for (const name of [...new Set([...killResidue.veths, ...killResidue.ports])]) {
      const k = kills.find((r) => hostVethName(r.id, 'eth0') === name);
      if (k) {
        console.log(`    ${name} is ${k.id} (${k.path} path): ${k.killed ? `killed at ${k.atMs.toFixed(0)} ms` : `exited ${k.exitCode} at ${k.atMs.toFixed(0)} ms`}, `
          + `on the node just after: ${piecesKey(k.before)}${k.afterDel ? `, after its DEL: ${piecesKey(k.afterDel)}` : ''}; pod namespace ${k.netns}`);
      }
    }

    console.log(`\nResident processes (${samples.length} samples; rule: ${describeRule()}, judged at the end of phase 1 and of phase 2)`);
    const [s0, sMid] = startMiddleEnd(samples);
    for (const d of RESIDENT) console.log(`  ${formatRss(d, s0.kib[d], sMid.kib[d], p2End.kib[d])}`);
    console.log(`  series: ${samples.map((s) => `${s.cycles}:${RESIDENT.map((d) => mib(s.kib[d])).join('/')}`).join(' ')}  (cycles: ${RESIDENT.join('/')} MiB)`);
    console.log(`\nwall ${wallS.toFixed(1)} s in all`);

    // ---- verdict ----
    if (failures.count > 0) reasons.push(`${failures.count} failed calls in phase 1`);
    if (killFailures.count > 0) reasons.push(`${killFailures.count} failed DEL/GC calls in phase 2`);
    const judge = (what: string, r: Residue): void => void (residueCount(r) > 0 && reasons.push(`${what}: ${formatResidue(r)}`));
    judge('residue after phase 1', churnResidue);
    judge('residue after phase 2', killResidue);
    if (churnPods.length > 0) reasons.push(`${churnPods.length} churn pod namespaces not empty`);
    if (killPodsLeft.length > 0) reasons.push(`${killPodsLeft.length} killed pods' namespaces not empty`);
    const delLeftCount = delLeft.veths.length + delLeft.ports.length + delLeft.allocations.length;
    if (delLeftCount > 0) reasons.push(`DEL after a kill left ${delLeftCount} pieces: ${JSON.stringify(delLeft)}`);
    for (const d of RESIDENT) {
      for (const end of [p1End, p2End]) {
        const v = rssVerdict(s0.kib[d], end.kib[d]);
        if (!v.ok) reasons.push(`${d} RSS ${mib(s0.kib[d])} -> ${mib(end.kib[d])} MiB at ${end.label}, over ${mib(v.limitKiB)} MiB`);
      }
    }
    if (done < CYCLES) reasons.push(`only ${done} of ${CYCLES} cycles ran`);
    if (kills.length < KILLS) reasons.push(`only ${kills.length} of ${KILLS} kills ran`);
    console.log(reasons.length === 0 ? 'PASS' : `FAIL\n${reasons.map((r) => `  - ${r}`).join('\n')}`);
    return reasons.length === 0 ? 0 : 1;
  } finally {
    // Whatever happened: a GC for anything a kill left, then the fixture goes (pods, OVS, node).
    await fx.cni({ command: 'GC', config: fx.config({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }), timeoutMs: CALL_TIMEOUT_MS }).catch(() => undefined);
    await fx.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await soak();
}
