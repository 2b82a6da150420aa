// `make conformance`: Kubernetes' own network e2e specs (the e2e.test of k8s.io/kubernetes
// v1.37.2) against a real kubeadm cluster of emulated nodes on Warren: a public
// control-plane node, one behind a home router, one behind a symmetric NAT (the cluster of
// test/integration/kube/cluster.test.ts, built by the same harness). The systemd-style agents
// hand over to the shipped DaemonSet, every node goes Ready and CoreDNS available, the
// control plane's NoSchedule taint goes (so that the specs' per-node pods land on all three
// nodes, the public one too), then e2e.test runs INSIDE the control-plane node (the API
// server listens on the host overlay only). Reports in dist/conformance/: report.json and
// junit.xml (Ginkgo's), e2e.log (its whole output), summary.txt. The cluster is torn down
// whatever happens, Ctrl-C included. Exit status: 0 when no spec failed.
//
// The tools come from `scripts/kube-tools.sh --conformance` (dist/kube-tools.conformance.json):
// e2e.test and agnhost built from the Go module, the agnhost and glibc-dns-testing images.
//
// Run as root: npx tsx scripts/conformance.ts [--focus REGEX]... [--skip REGEX]
//   --focus/--skip replace the default selection below (e.g. to rerun one spec).
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeCluster, type KubeTools } from '../test/helpers/kube/cluster.js';

const TOOLS_FILE = resolve('dist/kube-tools.conformance.json');
const OUT = resolve('dist/conformance');

/**
 * What runs (Ginkgo ORs the focus expressions, then drops what a skip expression matches):
 * - every `[sig-network] Networking Granular Checks` spec: pod-to-pod and node-to-pod over
 *   HTTP and UDP (Conformance), and the Services ones (pod-, node- and endpoint-to-Service,
 *   session affinity, large requests, endpoint updates, hostNetwork endpoints): the data path
 *   across Warren's overlay, through kube-proxy;
 * - every `[sig-network]` [Conformance] spec: Services (ClusterIP, NodePort, ExternalName,
 *   session affinity, multiple ports and protocols), DNS (CoreDNS on Warren's network: UDP and
 *   TCP, search paths, pod and service records, /etc/hosts, ExternalName as a CNAME), HostPort
 *   (Warren's conflist chains portmap), EndpointSlice/Endpoints/EndpointSliceMirroring, the
 *   API server's proxy to pods and services, Ingress/IngressClass/ServiceCIDR APIs, service
 *   endpoint latency. None of them needs a network beyond the cluster (ExternalName names
 *   are only answered as CNAMEs, never resolved).
 * Skipped: [Serial] and [Disruptive] (restart or break components the other specs share),
 * [Slow] (the two nodePort update specs, about 10 minutes each on 2 cores), [Feature:...]
 * (SCTP: no sctp module in this kernel and no loadable modules; Networking-IPv4/IPv6/DNS:
 * Internet access, which the lab has none of; Networking-Performance: iperf, a benchmark),
 * and [Provider:...]-only specs.
 */
const FOCUS = ['\\[sig-network\\] Networking Granular Checks', '\\[sig-network\\].*\\[Conformance\\]'];
const SKIP = '\\[Serial\\]|\\[Disruptive\\]|\\[Slow\\]|\\[Feature:|\\[Provider:|sctp';

interface ConformanceTools extends KubeTools {
  conformance: { e2eTest: string; images: { agnhost: string; glibcDnsTesting: string } };
}

interface SpecReport {
  ContainerHierarchyTexts?: string[] | null;
  LeafNodeText: string;
  LeafNodeType: string;
  State: string;
  NumAttempts: number;
  RunTime: number;
  Failure?: { Message: string; Location?: { FileName: string; LineNumber: number }; FailureNodeType?: string; FailureNodeLocation?: { FileName: string; LineNumber: number } };
}

function tools(): ConformanceTools {
  if (!existsSync(TOOLS_FILE)) throw new Error(`${TOOLS_FILE} is missing: run \`make conformance\` (or bash scripts/kube-tools.sh --conformance)`);
  const t = JSON.parse(readFileSync(TOOLS_FILE, 'utf8')) as ConformanceTools;
  for (const f of [`${t.bin}/kubelet`, `${t.bin}/kubeadm`, `${t.bin}/kubectl`, t.conformance.e2eTest, ...t.archives]) {
    if (!existsSync(f)) throw new Error(`${f} (listed in ${TOOLS_FILE}) is missing: run \`bash scripts/kube-tools.sh --conformance\``);
  }
  return t;
}

function args(): { focus: string[]; skip: string } {
  const a = process.argv.slice(2);
  const focus: string[] = [];
  let skip: string | undefined;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--focus' && a[i + 1] !== undefined) focus.push(a[++i]!);
    else if (a[i] === '--skip' && a[i + 1] !== undefined) skip = a[++i]!;
    else throw new Error(`unknown argument ${a[i]} (usage: conformance.ts [--focus REGEX]... [--skip REGEX])`);
  }
  return { focus: focus.length ? focus : FOCUS, skip: skip ?? SKIP };
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;
const say = (line: string): void => console.log(`[conformance] ${line}`);

let cluster: KubeCluster | undefined;
let e2e: { pid: number; exited: Promise<number | null> } | undefined;
let interrupted: string | undefined;

/** Ctrl-C: e2e.test is told first (it finishes the spec's cleanup and writes its reports), then the cluster goes. */
function catchSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = sig;
      console.error(`\n${sig}: stopping e2e.test (if running), then tearing the cluster down...`);
      if (e2e) { try { process.kill(-e2e.pid, 'SIGINT'); } catch { /* gone */ } }
    });
  }
}
const checkInterrupt = (): void => { if (interrupted) throw new Error(`interrupted (${interrupted})`); };

/** The cluster of cluster.test.ts, Warren rolled out, every node Ready and schedulable, CoreDNS available. */
async function buildCluster(t: ConformanceTools, timings: string[]): Promise<KubeCluster> {
  let started = Date.now();
  cluster = await KubeCluster.create(t, [
    { name: 'cp', kind: 'public' },
    { name: 'edge-home', kind: 'home-router' },
    { name: 'edge-sym', kind: 'symmetric' },
  ]);
  const c = cluster;
  timings.push(`cluster built (kubeadm init + 2 joins over the host overlay): ${secs(Date.now() - started)}`);
  say(timings.at(-1)!);
  checkInterrupt();
  started = Date.now();
  for (const n of c.nodes) await c.stopSystemdAgent(n);
  await c.applyWarren();
  await c.kubectl(['wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=180s']);
  await c.kubectl(['-n', 'warren-system', 'rollout', 'status', 'daemonset/warren-node', '--timeout=120s']);
  await c.kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=120s']);
  await c.kubectl(['-n', 'kube-system', 'wait', '--for=condition=Available', 'deployment/coredns', '--timeout=60s']);
  // The e2e framework counts only schedulable nodes: all three, so that the per-node specs use the public node too.
  const taints = await c.kubectlJson<{ spec: { taints?: { key: string; effect: string }[] } }>(['get', 'node', 'cp']);
  for (const taint of taints.spec.taints ?? []) {
    if (taint.key === 'node-role.kubernetes.io/control-plane') await c.kubectl(['taint', 'node', 'cp', `${taint.key}:${taint.effect}-`]);
  }
  timings.push(`Warren rolled out, every node Ready, CoreDNS available: ${secs(Date.now() - started)}`);
  say(timings.at(-1)!);
  return c;
}

/**
 * What of e2e.test's verbose output the terminal shows: each spec's name as it starts, its
 * result, and the final tally (e2e.log keeps everything; report.json every spec's log too).
 */
const PROGRESS = /^(\[sig-[a-z-]+\] |• |\[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|SKIPPED)\]|Ran \d+ of|SUCCESS!|FAIL!|Will run|  \[FAIL\]|Summarizing)/;

/** e2e.test in the control-plane node's network and mount namespaces; its output to e2e.log, progress to the terminal. */
async function runE2e(c: KubeCluster, t: ConformanceTools, focus: string[], skip: string): Promise<number | null> {
  const e2eArgs = [
    '--kubeconfig=/etc/kubernetes/admin.conf',
    '--provider=skeleton',
    `--num-nodes=${c.nodes.length}`,
    ...focus.map((f) => `--ginkgo.focus=${f}`),
    `--ginkgo.skip=${skip}`,
    `--ginkgo.json-report=${join(OUT, 'report.json')}`,
    `--ginkgo.junit-report=${join(OUT, 'junit.xml')}`,
    `--e2e-output-dir=${OUT}`,
    '--ginkgo.timeout=3h',
    '--ginkgo.no-color',
    '--ginkgo.silence-skips',
    '--ginkgo.v',
  ];
  say(`e2e.test ${e2eArgs.join(' ')}`);
  const log = createWriteStream(join(OUT, 'e2e.log'));
  // kubectl's cache (~/.kube) out of the reports.
  const home = mkdtempSync(join(tmpdir(), 'warren-e2e-home-'));
  const child = spawn('nsenter', [`--net=${c.cp.site.host.path}`, `--mount=${c.cp.mnt}`, '--', t.conformance.e2eTest, ...e2eArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, PATH: c.path, HOME: home } });
  e2e = { pid: child.pid!, exited: new Promise((res) => child.once('exit', (code) => res(code))) };
  let partial = '';
  const show = (d: Buffer): void => {
    log.write(d);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (PROGRESS.test(l)) console.log(`  ${l}`);
  };
  child.stdout.on('data', show);
  child.stderr.on('data', show);
  const code = await e2e.exited;
  await new Promise((res) => log.end(res));
  rmSync(home, { recursive: true, force: true });
  e2e = undefined;
  return code;
}

const specName = (s: SpecReport): string => [...(s.ContainerHierarchyTexts ?? []), s.LeafNodeText].filter(Boolean).join(' ');

/** Counts and every failure's reason, from Ginkgo's JSON report. */
function summarize(): { lines: string[]; failed: number } {
  const file = join(OUT, 'report.json');
  if (!existsSync(file)) return { lines: ['no report.json: e2e.test did not get to write one (see e2e.log)'], failed: 1 };
  const suites = JSON.parse(readFileSync(file, 'utf8')) as { SpecReports: SpecReport[] | null; SuiteSucceeded: boolean; RunTime: number }[];
  const specs = suites.flatMap((s) => s.SpecReports ?? []);
  const its = specs.filter((s) => s.LeafNodeType === 'It');
  // Ginkgo reports the specs the focus left out as skipped, never attempted.
  const selected = its.filter((s) => s.NumAttempts > 0 || (s.State !== 'skipped' && s.State !== 'pending'));
  const bad = (s: SpecReport): boolean => !['passed', 'skipped', 'pending'].includes(s.State);
  const passed = selected.filter((s) => s.State === 'passed');
  const skipped = selected.filter((s) => s.State === 'skipped' || s.State === 'pending');
  const failedSpecs = specs.filter(bad);
  const lines = [`${selected.length} specs selected: ${passed.length} passed, ${selected.filter(bad).length} failed, ${skipped.length} skipped ` +
    `(${its.length - selected.length} of e2e.test's ${its.length} not selected); e2e.test ran ${secs(suites.reduce((a, s) => a + s.RunTime, 0) / 1e6)}`];
  for (const s of skipped) lines.push(`skipped: ${specName(s)}: ${(s.Failure?.Message ?? '').trim().split('\n')[0]}`);
  const ran = [...passed, ...selected.filter(bad)].sort((a, b) => b.RunTime - a.RunTime);
  lines.push('slowest specs:', ...ran.slice(0, 5).map((s) => `  ${secs(s.RunTime / 1e6)}  ${specName(s)}`));
  for (const s of failedSpecs) {
    const where = s.Failure?.Location ? ` (${s.Failure.Location.FileName.replace(/.*\/test\/e2e\//, 'test/e2e/')}:${s.Failure.Location.LineNumber})` : '';
    const msg = (s.Failure?.Message ?? '').trim().split('\n').slice(0, 12).join('\n      ');
    lines.push(`FAILED (${s.State}${s.LeafNodeType === 'It' ? '' : `, ${s.LeafNodeType}`}) ${specName(s) || s.LeafNodeType}${where}\n      ${msg}`);
  }
  return { lines, failed: failedSpecs.length };
}

async function main(): Promise<number> {
  const started = Date.now();
  const t = tools();
  const { focus, skip } = args();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  catchSignals();
  const timings: string[] = [];
  let summary: { lines: string[]; failed: number } = { lines: [], failed: 1 };
  let failure: unknown;
  try {
    const c = await buildCluster(t, timings);
    checkInterrupt();
    const e2eStarted = Date.now();
    const code = await runE2e(c, t, focus, skip);
    timings.push(`e2e.test (exit status ${code}): ${secs(Date.now() - e2eStarted)}`);
    summary = summarize();
  } catch (err) {
    failure = err;
    if (existsSync(join(OUT, 'report.json'))) summary = summarize();
  } finally {
    const down = Date.now();
    if (cluster) {
      await cluster.destroy().catch((err: unknown) => { console.error(`[conformance] teardown: ${String(err)}`); });
      timings.push(`teardown: ${secs(Date.now() - down)}`);
    }
  }
  timings.push(`total: ${secs(Date.now() - started)}`);
  const report = [...summary.lines, ...timings, ...(failure ? [`ERROR: ${failure instanceof Error ? failure.stack ?? failure.message : String(failure)}`] : []),
    `reports: ${OUT}/{report.json,junit.xml,e2e.log}`];
  writeFileSync(join(OUT, 'summary.txt'), `${report.join('\n')}\n`);
  console.log(`\n${report.map((l) => `[conformance] ${l}`).join('\n')}`);
  return failure || summary.failed > 0 ? 1 : 0;
}

main().then((code) => process.exit(code), (err: unknown) => { console.error(err); process.exit(1); });
