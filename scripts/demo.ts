// `make demo`: Warren's CNI plugin on an emulated Kubernetes node, step by step.
// A node is a network namespace with its own Open vSwitch; podman plays the kubelet's
// runtime (its CNI backend is libcni, the library containerd and CRI-O use). Every step
// checks what it shows: any failure exits non-zero. Teardown always runs, Ctrl-C included.
// Run as root: npx tsx scripts/demo.ts
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../test/helpers/netns.js';
import { nodeState, podResidue } from '../test/helpers/node-state.js';
import { startOvs, type OvsInstance } from '../test/helpers/ovs.js';
import { Podman } from '../test/helpers/podman.js';
import { run, waitFor } from '../test/helpers/sh.js';

const NET = 'warren';
const POD_CIDR = '10.244.0.0/16';
const OUTSIDE = { node: '198.51.100.1', host: '198.51.100.2' }; // TEST-NET-2: the node's uplink

// ---- output and checks -------------------------------------------------------------
let stepNo = 0;
let interrupted: string | undefined;
function step(title: string): void {
  if (interrupted) throw new Error(`interrupted (${interrupted})`);
  console.log(`\n[${++stepNo}] ${title}`);
}
const show = (text: string): void => console.log(text.trimEnd().split('\n').map((l) => `      ${l}`).join('\n'));
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`    ✔ ${what}`);
}

// ---- teardown: undone in reverse order of creation, whatever happened ---------------
const undo: { what: string; fn: () => Promise<void> | void }[] = [];
const onTeardown = (what: string, fn: () => Promise<void> | void): void => void undo.push({ what, fn });
async function teardown(): Promise<boolean> {
  let clean = true;
  for (let u = undo.pop(); u; u = undo.pop()) {
    await Promise.resolve().then(u.fn).catch((err: Error) => { clean = false; console.error(`    ✘ teardown: ${u!.what}: ${err.message}`); });
  }
  return clean;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (!interrupted) console.error(`\n${sig}: stopping after the current command, then cleaning up...`);
    interrupted ??= sig;
  });
}

// ---- building blocks: a host outside the cluster, a node, a container ---------------
/** The "outside": one namespace whose TCP server on :8080 answers with the address it sees. */
async function createOutside(): Promise<Netns> {
  const ns = await Netns.create('out');
  onTeardown('outside namespace', () => ns.destroy());
  const server = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e',
    'require("net").createServer((s) => s.end("you are " + s.remoteAddress + "\\n")).listen(8080, "0.0.0.0", () => console.log("ready"))'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  onTeardown('outside server', () => void server.kill());
  await new Promise<void>((resolve, reject) => {
    server.stdout.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`outside server exited (${code})`)));
  });
  return ns;
}

/** The helper's stop() only signals; wait for both daemons to be gone so that nothing outlives the demo. */
async function stopOvs(ovs: OvsInstance): Promise<void> {
  const pids = ['ovsdb-server', 'ovs-vswitchd'].map((d) => { try { return Number(readFileSync(`${ovs.dir}/${d}.pid`, 'utf8')); } catch { return 0; } });
  const alive = (pid: number): boolean => { try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };
  await ovs.stop();
  await waitFor('OVS daemons to exit', () => !pids.some((p) => p && alive(p)), 5000);
}

interface DemoNode { name: string; ns: Netns; ovs: OvsInstance; podman: Podman; ipamDir: string; podSubnet: string; pods: string[] }

/** An emulated node: namespace, private OVS, uplink veth to `outside`, and a podman whose only network is Warren. */
async function createNode(name: string, podSubnet: string, outside: Netns, uplink: { node: string; host: string }): Promise<DemoNode> {
  const ns = await Netns.create(name);
  onTeardown(`${name} namespace`, () => ns.destroy());
  const ovs = await startOvs(ns);
  onTeardown(`${name} OVS`, () => stopOvs(ovs));
  await run('ip', ['link', 'add', 'uplink', 'netns', ns.name, 'type', 'veth', 'peer', 'name', `to-${name}`, 'netns', outside.name]);
  await ns.exec('ip', ['addr', 'add', `${uplink.node}/24`, 'dev', 'uplink']);
  await ns.exec('ip', ['link', 'set', 'uplink', 'up']);
  await ns.exec('ip', ['route', 'add', 'default', 'via', uplink.host]);
  await outside.exec('ip', ['addr', 'add', `${uplink.host}/24`, 'dev', `to-${name}`]);
  await outside.exec('ip', ['link', 'set', `to-${name}`, 'up']);
  const ipamDir = mkdtempSync(join(tmpdir(), 'warren-demo-ipam-'));
  onTeardown(`${name} IPAM dir`, () => rmSync(ipamDir, { recursive: true, force: true }));
  const conflist = {
    cniVersion: '1.0.0', name: NET,
    plugins: [
      { type: 'warren', mtu: 1400, podCIDR: POD_CIDR, ovsdb: ovs.db,
        ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: podSubnet }]] } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
  const podman = await Podman.create(ns, { [NET]: conflist });
  const pods: string[] = [];
  onTeardown(`${name} podman`, async () => {
    await podman.destroy();
    // libcni keeps its cache when a DEL fails: remove it, and say so.
    const stale = pods.map((id) => `/var/lib/cni/results/${NET}-${id}-eth0`).filter((f) => existsSync(f));
    stale.forEach((f) => rmSync(f));
    if (stale.length) throw new Error(`DEL failed for ${stale.length} container(s); removed libcni's cache`);
  });
  console.log(`    node ${name}: namespace ${ns.name}, OVS at ${ovs.db}, uplink ${uplink.node} -> outside ${uplink.host}`);
  console.log(`    conflist ${podman.dir}/net.d/${NET}.conflist:`);
  show(JSON.stringify(conflist, null, 2));
  return { name, ns, ovs, podman, ipamDir, podSubnet, pods };
}

const startPod = async (node: DemoNode, name: string, command: string[]) => void node.pods.push(await node.podman.run(name, NET, command));
const sh = async (node: DemoNode, pod: string, script: string) => (await node.podman.exec(pod, ['sh', '-c', script], true));

async function addressOf(node: DemoNode, pod: string): Promise<string> {
  const out = (await node.podman.exec(pod, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  const m = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out);
  if (!m) throw new Error(`${pod} has no IPv4 address on eth0: ${out}`);
  return m[1]!;
}

async function ping(node: DemoNode, from: string, to: string, what: string): Promise<void> {
  console.log(`    $ podman exec ${from} ping -c 3 ${to}        # ${what}`);
  const r = await node.podman.exec(from, ['ping', '-c', '3', '-W', '2', to], true);
  show(r.stdout.split('\n').filter((l) => /transmitted|round-trip/.test(l)).join('\n'));
  check(r.exitCode === 0, `${from} reaches ${what} (${to})`);
}

// ---- the demo ---------------------------------------------------------------------
async function demo(): Promise<void> {
  step('Create an emulated node (netns + private Open vSwitch) and a host outside the cluster');
  const outside = await createOutside();
  const node = await createNode('node1', '10.244.1.0/24', outside, OUTSIDE);
  const gateway = '10.244.1.1';

  step('Start two busybox containers on the "warren" network (podman calls warren-cni ADD)');
  await startPod(node, 'a', ['sleep', '3600']);
  // b serves two TCP ports: :5000 reads one line and answers it, :5001 counts the bytes it receives.
  await startPod(node, 'b', ['sh', '-c', '(while true; do nc -l -p 5001 -e wc -c; done) & ' +
    'while true; do nc -l -p 5000 -e sh -c \'read line; echo "b got \\"$line\\", answers: hello from b"\'; done']);
  const sandboxes = (await node.podman.podman(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', 'a', 'b'])).stdout.trim().split('\n');
  const [a, b] = [await addressOf(node, 'a'), await addressOf(node, 'b')];
  console.log(`    a: eth0 ${a}\n    b: eth0 ${b}`);
  check(a !== b && a.startsWith('10.244.1.') && b.startsWith('10.244.1.'), `both have distinct addresses in ${node.podSubnet}`);
  const bIp = b.split('/')[0]!;

  step('Ping: container to container, container to the gateway on the OVS bridge');
  await ping(node, 'a', bIp, 'container b');
  await ping(node, 'a', gateway, 'the gateway');

  step('TCP between the containers (nc): a sends a line, b answers');
  console.log(`    $ podman exec a sh -c 'echo "hello from a" | nc ${bIp} 5000'`);
  let reply = '';
  await waitFor('b to listen on :5000', async () => (reply = (await sh(node, 'a', `echo "hello from a" | nc -w 2 ${bIp} 5000`)).stdout).includes('hello from b'));
  show(reply);
  check(reply.includes('b got "hello from a"'), 'b received a\'s line and a received b\'s answer');
  console.log(`    $ podman exec a sh -c 'head -c 1000000 /dev/zero | nc ${bIp} 5001'   # b counts the bytes`);
  const bytes = (await sh(node, 'a', `head -c 1000000 /dev/zero | nc -w 5 ${bIp} 5001`)).stdout.trim();
  show(bytes);
  check(bytes === '1000000', 'all of 1 MB arrives at b');

  step('Leave the cluster: a connects to the outside host, which sees the node\'s address (masquerade)');
  console.log(`    $ podman exec a nc ${OUTSIDE.host} 8080`);
  const seen = (await sh(node, 'a', `nc -w 2 ${OUTSIDE.host} 8080 </dev/null`)).stdout;
  show(seen);
  check(seen.trim() === `you are ${OUTSIDE.node}`, `the outside host sees ${OUTSIDE.node} (the node), not ${a.split('/')[0]} (the pod)`);

  step('The OVS ports warren-cni created, tagged with their pod');
  console.log(`    $ ovs-vsctl --db=${node.ovs.db} --columns=name,external_ids list Interface`);
  const ports = await run('ovs-vsctl', [`--db=${node.ovs.db}`, '--columns=name,external_ids', 'list', 'Interface']);
  show(ports);
  check(podResidue(await nodeState(node.ns, node.ovs, join(node.ipamDir, NET))).ports.length === 2, 'one port per container');

  step('Remove the containers (podman calls warren-cni DEL): nothing may be left behind');
  await node.podman.podman(['rm', '-f', '-t', '0', 'a', 'b']);
  const residue = podResidue(await nodeState(node.ns, node.ovs, join(node.ipamDir, NET)));
  const leftNetns = sandboxes.filter((p) => p && existsSync(p));
  const left: [string, string[]][] = [['pod veths on the node', residue.veths], ['pod ports on OVS', residue.ports],
    ['addresses in IPAM', residue.allocations], ['container netns', leftNetns]];
  for (const [what, items] of left) console.log(`    ${(what + ':').padEnd(23)}${items.join(' ') || '(none)'}`);
  check(!residue.veths.length && !residue.ports.length && !residue.allocations.length && !leftNetns.length,
    'no veth, OVS port, address or container namespace is left');
}

const started = Date.now();
let status = 0;
try {
  await demo();
} catch (err) {
  console.error(`\n✘ ${(err as Error).message}`);
  status = 1;
} finally {
  console.log('\nTearing down (containers, OVS, namespaces, temporary files)...');
  if (!(await teardown())) status = 1;
}
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(status === 0 ? `\n✔ Demo passed in ${secs} s.` : `\n✘ Demo FAILED after ${secs} s.`);
process.exit(interrupted ? 130 : status);
