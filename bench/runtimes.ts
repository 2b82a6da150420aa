// Which runtime starts warren-cni fastest (issue 12): start time to exit, peak memory and
// executable size of a CNI VERSION call under each runtime Warren could ship as, against
// the Go reference `bridge` plugin's VERSION measured in the same run, interleaved round
// by round so that load from elsewhere falls on every row alike; then whether Warren's
// dependencies work under each (bench/runtimes/checks.ts). Rows that cannot be built or
// run are printed as such, with the reason.
//
// Every process gets the environment a runtime gives a plugin (PATH and the CNI
// variables), not the bench's: a shell's NODE_EXTRA_CA_CERTS alone adds 100 ms or more to
// every Node start (the rows that set it show it).
import { existsSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCandidates, RUNTIME_NAMES, type Runtime } from './runtimes/build.js';
import { checkCniAddDel, checkDependencies } from './runtimes/checks.js';
import { percentile, ratio } from './stats.js';
import { peakSpawn, timedSpawn } from './timed-spawn.js';

const ROUNDS = 50;
const WARMUP = 5;
const MEMORY_ROUNDS = 10;
const ADD_CYCLES = 40;
const BRIDGE = '/usr/lib/cni/bridge';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const CONF = JSON.stringify({ cniVersion: '1.0.0', name: 'runtimes', type: 'warren' });

interface Row {
  label: string;
  file: string;
  args?: string[];
  env?: Record<string, string>;
  /** Bytes a node carries for it. */
  size?: number;
  times: number[];
  peakKb: number[];
  failed?: string;
}

const versionEnv = (row: Row) => ({ CNI_COMMAND: 'VERSION', CNI_PATH: '/usr/lib/cni', ...row.env });

function versionCall(row: Row) {
  return timedSpawn(row.file, versionEnv(row), CONF, row.args ?? []);
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '-' : `${(bytes / 1e6).toFixed(1)} MB`);

export async function benchRuntimes(): Promise<void> {
  const work = resolve('dist/runtimes');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    await compare(work);
  } finally {
    // A dozen executables of 100 MB each: 1.2 GB left behind otherwise.
    rmSync(work, { recursive: true, force: true });
  }
}

async function compare(work: string): Promise<void> {
  const built = await buildCandidates(work);
  const size = (f: string) => statSync(f).size;
  const row = (label: string, file: string, extra: Partial<Row> = {}): Row => ({ label, file, size: size(file), times: [], peakKb: [], ...extra });

  const rows: Row[] = [row('Go bridge plugin (baseline)', BRIDGE)];
  const skipped: string[] = [];
  for (const program of ['minimal', 'cni'] as const) {
    const name = program === 'minimal' ? 'minimal CNI program' : 'warren-cni';
    for (const runtime of Object.keys(RUNTIME_NAMES) as Runtime[]) {
      const key = `${program}/${runtime}`;
      const file = built.files.get(key);
      if (file) rows.push(row(`${name}, ${RUNTIME_NAMES[runtime]}`, file));
      else skipped.push(`${name}, ${RUNTIME_NAMES[runtime]}: ${built.failures.get(key) ?? `skipped: ${built.bunSkipped}`}`);
    }
    // Not one file: needs Node and the bundle on the node.
    rows.push({ label: `${name}, node bundle.cjs (Node installed + bundle)`, file: process.execPath, args: [built.bundles[program]], size: size(process.execPath) + size(built.bundles[program]), times: [], peakKb: [] });
  }
  const bunWarren = built.files.get('warren/bun-bytecode');
  if (bunWarren) rows.push(row('warren (all three programs), Bun --bytecode', bunWarren));
  else skipped.push(`warren (all three programs), Bun --bytecode: ${built.failures.get('warren/bun-bytecode') ?? `skipped: ${built.bunSkipped}`}`);
  const seaCni = built.files.get('cni/sea-cache')!;
  rows.push(row('warren-cni, SEA, NODE_OPTIONS=--v8-pool-size=0', seaCni, { env: { NODE_OPTIONS: '--v8-pool-size=0' } }));
  rows.push(row('warren-cni, SEA, NODE_OPTIONS=--jitless', seaCni, { env: { NODE_OPTIONS: '--jitless' } }));
  if (existsSync(CA_BUNDLE)) {
    rows.push(row('warren-cni, SEA, NODE_EXTRA_CA_CERTS set', seaCni, { env: { NODE_EXTRA_CA_CERTS: CA_BUNDLE } }));
    const bunCni = built.files.get('cni/bun-bytecode');
    if (bunCni) rows.push(row('warren-cni, Bun --bytecode, NODE_EXTRA_CA_CERTS set', bunCni, { env: { NODE_EXTRA_CA_CERTS: CA_BUNDLE } }));
  }

  for (const r of rows) {
    const once = await versionCall(r);
    if (once.code !== 0 || !once.out.includes('supportedVersions')) r.failed = `exit ${once.code}: ${(once.err || once.out).trim().split('\n')[0]}`;
  }
  const live = rows.filter((r) => !r.failed);
  // Round robin, each round starting one row further: no row always follows the same one.
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    for (let i = 0; i < live.length; i++) {
      const r = live[(i + round) % live.length]!;
      const t = await versionCall(r);
      if (round >= WARMUP) r.times.push(t.ms);
    }
  }
  for (let round = 0; round < MEMORY_ROUNDS; round++) {
    for (const r of live) {
      r.peakKb.push((await peakSpawn(r.file, versionEnv(r), CONF, r.args ?? [])).peakKb);
    }
  }

  const base = live[0]!;
  const baseP50 = percentile(base.times, 50);
  const baseKb = percentile(base.peakKb, 50);
  const sea = live.find((r) => r.file === seaCni && !r.env);
  console.log(`\nruntimes: a CNI VERSION call, spawn to exit, ${ROUNDS} interleaved runs per row (after ${WARMUP}), peak RSS over ${MEMORY_ROUNDS}`);
  console.log('| program, runtime | start p50 | p90 | p50 x bridge | p50 x SEA today | peak RSS | x bridge | executable |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of live) {
    const p50 = percentile(r.times, 50);
    const kb = percentile(r.peakKb, 50);
    console.log(`| ${r.label} | ${p50.toFixed(1)} ms | ${percentile(r.times, 90).toFixed(1)} ms | ${ratio(p50, baseP50)} | ${sea ? ratio(p50, percentile(sea.times, 50)) : '-'} | ${(kb / 1024).toFixed(1)} MiB | ${ratio(kb, baseKb)} | ${mb(r.size)} |`);
  }
  for (const r of rows.filter((x) => x.failed)) console.log(`  FAILED ${r.label}: ${r.failed}`);
  for (const s of skipped) console.log(`  not built: ${s}`);

  const deps = new Map<string, string>();
  for (const runtime of Object.keys(RUNTIME_NAMES) as Runtime[]) {
    const file = built.files.get(`deps/${runtime}`);
    if (file) deps.set(RUNTIME_NAMES[runtime], file);
  }
  const plugins = new Map<string, string>();
  for (const [key, label] of [['cni/sea-cache', 'SEA, code cache (dist/bin/warren-cni)'], ['cni/sea-snapshot', 'SEA, startup snapshot'], ['cni/bun-bytecode', 'Bun --bytecode'], ['warren/bun-bytecode', 'Bun --bytecode, all three programs']]) {
    const file = built.files.get(key!);
    if (file) plugins.set(label!, file);
  }
  // The one executable started by a link's name, as the DaemonSet starts configgen.
  const configgens = new Map<string, string>([['SEA, code cache (dist/bin/warren-configgen)', resolve('dist/bin/warren-configgen')]]);
  if (bunWarren) {
    const link = join(dirname(bunWarren), 'warren-configgen');
    symlinkSync('warren', link);
    configgens.set('Bun --bytecode, all three programs', link);
  }
  const checked = await checkDependencies(deps, configgens);
  const depResults = checked.deps;
  console.log('\nruntimes: dependencies against a real etcd and an HTTP server, from another directory');
  for (const runtime of Object.keys(RUNTIME_NAMES) as Runtime[]) {
    const name = RUNTIME_NAMES[runtime];
    const r = depResults.get(name);
    const why = built.failures.get(`deps/${runtime}`) ?? `skipped: ${built.bunSkipped}`;
    console.log(`  ${name}: etcd3 put/get/watch ${r ? r.etcd : why}; the same over mTLS to an IP address ${r ? r.etcdTls : why}; client-node GET node ${r ? r.kube : why}`);
  }
  for (const [label, outcome] of checked.configgen) console.log(`  warren-configgen claims a subnet, ${label}: ${outcome}`);
  const cni = await checkCniAddDel(plugins, ADD_CYCLES);
  console.log('runtimes: the plugin\'s real ADD then DEL (host-local, private OVS)');
  for (const [label, outcome] of cni.outcomes) console.log(`  ${label}: ${outcome}`);
  const bridgeAdd = percentile(cni.addMs.get('Go bridge plugin') ?? [], 50);
  console.log(`runtimes: ADD p50 over ${ADD_CYCLES} interleaved ADD/DEL cycles, through ip netns exec`);
  for (const [label, times] of cni.addMs) console.log(`  ${label}: ${percentile(times, 50).toFixed(1)} ms (p90 ${percentile(times, 90).toFixed(1)} ms), ${ratio(percentile(times, 50), bridgeAdd)} bridge`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await benchRuntimes();
