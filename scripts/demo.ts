// `make demo`: Warren on emulated Kubernetes nodes, step by step. warren-configgen gives
// each node its pod subnet and host-overlay address from one etcd and writes the node's
// CNI config; node1 (a network namespace with its own Open vSwitch) then runs two podman
// containers on that very config (podman's CNI backend is libcni, the library containerd
// and CRI-O use, and libcni runs warren-cni). Every step checks what it shows: any failure
// exits non-zero. Teardown always runs, Ctrl-C included, then looks for leftovers.
// Run as root: npx tsx scripts/demo.ts (building blocks in scripts/demo/).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressAt, cidrContains, parseCidr } from '../lib/cidr.js';
import { run, waitFor } from '../test/helpers/sh.js';
import { nodeState, podResidue } from '../test/helpers/node-state.js';
import { configgen, etcdRevision, NodeConfig, POOL, startEtcd } from './demo/configgen.js';
import { addressOf, ping, sh, startPod } from './demo/containers.js';
import { createNode, createOutside, startRuntime, type EmulatedNode } from './demo/emulated-node.js';
import { check, show, showCommand, step } from './demo/report.js';
import { interrupted, leftovers, teardown } from './demo/teardown.js';

const OUTSIDE = { node: '198.51.100.1', host: '198.51.100.2' }; // TEST-NET-2: node1's uplink
const MTU = 1400;
/**
 * The cluster. Only node1 is emulated so far (namespace, OVS, podman); node2 and node3 get
 * their allocations and config files but no machine. Extension point for warren-agent (the
 * node-agent issue): create them with createNode() as node1, each with its own uplink, so
 * that configgen gets their OVS too, then start the agent on every node with its node.json
 * to build the host and pod overlays, and ping across nodes.
 */
const NODES = ['node1', 'node2', 'node3'];

const distinct = (xs: string[]): boolean => new Set(xs).size === xs.length;
const inCidr = (cidr: string, address: string): boolean => cidrContains(parseCidr(cidr), address);

async function demo(): Promise<void> {
  step('Start the cluster\'s etcd; create node1 (netns + private Open vSwitch) and a host outside the cluster');
  const etcd = await startEtcd();
  console.log(`    etcd at ${etcd.endpoint}`);
  const outside = await createOutside();
  const emulated = new Map<string, EmulatedNode>();
  for (const name of ['node1']) emulated.set(name, await createNode(name, outside, OUTSIDE));

  step('warren-configgen on the three nodes at once, as their init containers: one pod subnet and one host address each');
  const configs = NODES.map((name) => new NodeConfig(name, etcd, { ovsdb: emulated.get(name)?.ovs.db, mtu: MTU }));
  showCommand('warren-configgen', configs[0]!.args);
  console.log('    (node2 and node3 alike, each with its own directories, without --ovsdb: they have no OVS yet)');
  show((await Promise.all(configs.map((c) => c.run()))).join('\n'));
  const allocations = configs.map((c) => c.allocation());
  const subnets = allocations.map((a) => a.podSubnet);
  check(distinct(subnets) && subnets.every((s) => s.endsWith(`/${parseCidr(POOL.podCIDR).prefix + POOL.nodeBits}`) && inCidr(POOL.podCIDR, s.split('/')[0]!)),
    `three distinct /24 pod subnets in ${POOL.podCIDR}`);
  check(allocations.every((a) => a.gateway === addressAt(parseCidr(a.podSubnet), 1)), 'each gateway is its subnet\'s first address');
  check(distinct(allocations.map((a) => a.hostAddress)) && allocations.every((a) => inCidr(POOL.hostCIDR, a.hostAddress)),
    `three distinct host-overlay addresses in ${POOL.hostCIDR}`);
  const ipamRange = (c: NodeConfig) => JSON.stringify((c.conflist().plugins as { ipam?: { ranges: { subnet: string; gateway: string }[][] } }[])[0]!.ipam!.ranges);
  check(configs.every((c, i) => ipamRange(c).includes(`"subnet":"${subnets[i]}"`) && ipamRange(c).includes(`"gateway":"${allocations[i]!.gateway}"`)),
    'each node\'s conflist hands out addresses of its own subnet, with its own gateway');

  step('Every allocation, as stored in etcd');
  const listArgs = ['list', '--etcd-endpoints', etcd.endpoint];
  showCommand('warren-configgen', listArgs);
  const table = await configgen(listArgs);
  show(table);
  check(table.includes(`: ${NODES.length} node(s)`) && allocations.every((a) =>
    table.split('\n').some((l) => l.split(/\s+/).join(' ') === `${a.node} ${a.podSubnet} ${a.gateway} ${a.hostAddress}`)),
  'the table lists the three allocations');

  step('node1\'s init container runs again (a restart, a redeployed DaemonSet): nothing changes');
  const node1 = configs[0]!;
  const [files, revision] = [node1.fingerprint(), await etcdRevision(etcd)];
  console.log('    $ warren-configgen ...                 # the same command as above, on node1');
  const again = await node1.run();
  show(again);
  check(again.includes('already allocated') && node1.allocation().podSubnet === subnets[0], `node1 keeps ${subnets[0]}`);
  check(node1.fingerprint() === files, 'its conflist and node.json are untouched (same content, inode and modification time)');
  check(await etcdRevision(etcd) === revision, `nothing was written to etcd (its revision stays ${revision})`);

  step('node1\'s runtime: podman reads node1\'s CNI config directory, where warren-configgen wrote the conflist');
  const net = String(node1.conflist().name);
  const node = await startRuntime(emulated.get('node1')!, node1.confDir, net);
  console.log(`    ${node1.conflistPath}:`);
  show(readFileSync(node1.conflistPath, 'utf8'));
  const { podSubnet, gateway } = allocations[0]!;

  step(`Start two busybox containers on the "${net}" network (podman calls warren-cni ADD)`);
  await startPod(node, 'a', ['sleep', '3600']);
  // b serves two TCP ports: :5000 reads one line and answers it, :5001 counts the bytes it receives.
  await startPod(node, 'b', ['sh', '-c', '(while true; do nc -l -p 5001 -e wc -c; done) & ' +
    'while true; do nc -l -p 5000 -e sh -c \'read line; echo "b got \\"$line\\", answers: hello from b"\'; done']);
  const sandboxes = (await node.podman.podman(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', 'a', 'b'])).stdout.trim().split('\n');
  const [a, b] = [await addressOf(node, 'a'), await addressOf(node, 'b')];
  console.log(`    a: eth0 ${a}\n    b: eth0 ${b}`);
  const inOwnSubnet = (addr: string) => inCidr(podSubnet, addr.split('/')[0]!) && addr.endsWith(`/${parseCidr(podSubnet).prefix}`);
  check(a !== b && inOwnSubnet(a) && inOwnSubnet(b), `both have distinct addresses in node1's subnet ${podSubnet}`);
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
  show(await run('ovs-vsctl', [`--db=${node.ovs.db}`, '--columns=name,external_ids', 'list', 'Interface']));
  check(podResidue(await nodeState(node.ns, node.ovs, join(node1.ipamDir, net))).ports.length === 2, 'one port per container');

  step('Remove the containers (podman calls warren-cni DEL): nothing may be left behind');
  await node.podman.podman(['rm', '-f', '-t', '0', 'a', 'b']);
  const residue = podResidue(await nodeState(node.ns, node.ovs, join(node1.ipamDir, net)));
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
  // Ctrl-C reaches the commands too: what failed then is the interruption, not a check.
  console.error(`\n✘ ${interrupted ? `interrupted (${interrupted})` : (err as Error).message}`);
  status = 1;
} finally {
  console.log('\nTearing down (containers, OVS, namespaces, etcd, temporary files)...');
  if (!(await teardown())) status = 1;
  const left = leftovers();
  for (const l of left) console.error(`    ✘ left behind: ${l}`);
  if (left.length) status = 1;
  else console.log('    ✔ nothing left: no namespace, etcd, OVS or podman process, no temporary directory');
}
const secs = ((Date.now() - started) / 1000).toFixed(1);
console.log(status === 0 ? `\n✔ Demo passed in ${secs} s.` : `\n✘ Demo FAILED after ${secs} s.`);
process.exit(interrupted ? 130 : status);
