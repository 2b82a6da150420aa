// `make demo`: a Warren cluster of three emulated nodes behind three different NATs, each
// with its own Open vSwitch and podman, running the real binaries: warren-configgen (the
// init container: pod subnet and host address from etcd, the node's CNI config),
// warren-cni (executed by podman for every container) and warren-agent (the encrypted
// overlay across the NATs: STUN, hole punching, TURN relay). It ends with pods pinging
// across nodes by their own addresses and the agent's status table. Part two joins two
// more clusters through an emulated SD-EWAN hub (scripts/demo/sdewan.ts).
//
//   edge-a ── home router ────────────────────┐
//   edge-b ── symmetric (carrier-grade) NAT ──┼── internet ── coturn and etcd (192.0.2.10)
//   edge-c ── home router ── carrier NAT ─────┘         └── a web host (public address)
//
// Every step checks what it shows: any failure exits non-zero. Teardown always runs,
// Ctrl-C included, then looks for leftovers. Run as root: npx tsx scripts/demo.ts
// (building blocks in scripts/demo/, the lab in test/helpers/agent-lab.ts).
import { existsSync } from 'node:fs';
import { addressAt, cidrContains, parseCidr } from '../lib/cidr.js';
import { formatEndpoint } from '../node-agent/nat/stun-address.js';
import { POOL, WARREN_AGENT } from '../test/helpers/agent-lab.js';
import type { SiteKind } from '../test/helpers/natlab.js';
import { nodeState, podResidue } from '../test/helpers/node-state.js';
import { run, waitFor } from '../test/helpers/sh.js';
import { addNode, addWebHost, type ClusterNode, allocation, conflist, configgenList, etcdRevision, fingerprint, rerunConfiggen, startLab, whoAmI as serveWhoAmI } from './demo/cluster.js';
import { iperf, ping, reachable, startPod, whoAmI, type Pod } from './demo/containers.js';
import { check, show, showCommand, step } from './demo/report.js';
import { sdewanDemo } from './demo/sdewan.js';
import { catchSignals, interrupted, leftovers, teardown } from './demo/teardown.js';

const NODES: [string, SiteKind, string][] = [
  ['edge-a', 'home-router', 'home router'], ['edge-b', 'symmetric', 'symmetric NAT'], ['edge-c', 'double-nat', 'double NAT']];
const distinct = (xs: string[]): boolean => new Set(xs).size === xs.length;
const inCidr = (cidr: string, address: string): boolean => cidrContains(parseCidr(cidr), address);
const table = (rows: string[][]): string =>
  rows.map((r) => r.map((c, i) => c.padEnd(Math.max(...rows.map((x) => x[i]!.length)))).join('  ').trimEnd()).join('\n');

async function demo(): Promise<void> {
  step('The emulated internet: a router; coturn (STUN and TURN) and the cluster\'s etcd on 192.0.2.10');
  const lab = await startLab();
  console.log(`    etcd ${lab.etcd.endpoint}, STUN and TURN ${formatEndpoint(lab.lab.turn.server)}`);

  step('Three nodes behind three NATs, each with its own Open vSwitch; warren-configgen runs on each as its init container');
  const nodes: ClusterNode[] = [];
  for (const [name, kind] of NODES) nodes.push(await addNode(lab, kind, name));
  const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  showCommand('warren-configgen', a.configgen.args);
  console.log('    (edge-b and edge-c alike, each in its own namespace with its own directories and OVS)');
  show(nodes.map((n) => n.configgen.output).join('\n'));
  const allocs = nodes.map(allocation);
  show(table([['NODE', 'BEHIND', 'ADDRESS', 'PUBLIC ADDRESS', 'POD SUBNET', 'HOST ADDRESS'],
    ...nodes.map((n, i) => [n.name, NODES[i]![2], n.site.hostAddress, n.site.publicAddress, allocs[i]!.podSubnet, allocs[i]!.hostAddress])]));
  const subnets = allocs.map((x) => x.podSubnet);
  check(distinct(subnets) && subnets.every((s) => s.endsWith(`/${parseCidr(POOL.podCIDR).prefix + POOL.nodeBits}`) && inCidr(POOL.podCIDR, s.split('/')[0]!)),
    `three distinct /24 pod subnets in ${POOL.podCIDR}`);
  check(allocs.every((x) => x.gateway === addressAt(parseCidr(x.podSubnet), 1)), 'each gateway is its subnet\'s first address');
  check(distinct(allocs.map((x) => x.hostAddress)) && allocs.every((x) => inCidr(POOL.hostCIDR, x.hostAddress)), `three distinct host-overlay addresses in ${POOL.hostCIDR}`);
  const ipam = (n: ClusterNode) => JSON.stringify(conflist(n).plugins[0]!.ipam);
  check(nodes.every((n, i) => ipam(n).includes(`"subnet":"${subnets[i]}"`) && ipam(n).includes(`"gateway":"${allocs[i]!.gateway}"`)),
    'each node\'s conflist hands out addresses of its own subnet, with its own gateway');

  step('Every allocation, as stored in etcd');
  const list = await configgenList(a, lab.etcd);
  showCommand('warren-configgen', list.args);
  show(list.table);
  check(list.table.includes(`: ${nodes.length} node(s)`) && allocs.every((x) =>
    list.table.split('\n').some((l) => l.split(/\s+/).join(' ') === `${x.node} ${x.podSubnet} ${x.gateway} ${x.hostAddress}`)), 'the table lists the three allocations');

  step('edge-a\'s init container runs again (a restart, a redeployed DaemonSet): nothing changes');
  const [files, revision] = [fingerprint(a), await etcdRevision(lab.etcd)];
  console.log('    edge-a$ warren-configgen ...           # the same command as above');
  const again = await rerunConfiggen(a);
  show(again);
  check(again.includes('already allocated') && allocation(a).podSubnet === subnets[0], `edge-a keeps ${subnets[0]}`);
  check(fingerprint(a) === files, 'its conflist and node.json are untouched (same content, inode and modification time)');
  check(await etcdRevision(lab.etcd) === revision, `nothing was written to etcd (its revision stays ${revision})`);

  step('Each node\'s podman reads the CNI config directory warren-configgen wrote; containers start (warren-cni ADD)');
  console.log(`    ${a.conflistPath}, the warren plugin:`);
  show(JSON.stringify(conflist(a).plugins[0]));
  const [pa, pa2, pb, pc] = [await startPod(a, 'pa'), await startPod(a, 'pa2'), await startPod(b, 'pb'), await startPod(c, 'pc')];
  const pods = [pa, pa2, pb, pc];
  show(table(pods.map((p) => [p.node.name, p.name, `eth0 ${p.cidr}`])));
  const inOwnSubnet = (p: Pod) => inCidr(allocation(p.node).podSubnet, p.ip) && p.cidr.endsWith(`/${parseCidr(allocation(p.node).podSubnet).prefix}`);
  check(pods.every(inOwnSubnet) && distinct(pods.map((p) => p.ip)), 'every container has its own address in its node\'s subnet');

  step('On edge-a: container to container, container to the gateway on the OVS bridge');
  await ping(pa, pa2.ip, 'container pa2');
  await ping(pa, allocs[0]!.gateway, 'the gateway');

  step('Leaving the cluster: a web host on the internet sees the node\'s NAT, never the pod (warren-cni masquerades, then the routers)');
  const web = await addWebHost(lab);
  console.log(`    web host ${web.publicAddress}, answering on :8080 with the address it sees`);
  for (const [pod, node] of [[pa, a], [pc, c]] as const) {
    const seen = await whoAmI(pod, web.publicAddress);
    check(seen === `the web host sees you as ${node.site.publicAddress}`, `it sees ${node.name}'s public address ${node.site.publicAddress}, not ${pod.ip}`);
  }

  step('No overlay yet: pod addresses of other nodes lead nowhere');
  console.log(`    edge-a$ podman exec pa ping -c 1 -W 1 ${pc.ip}`);
  check(!(await reachable(pa, pc.ip, 1000)), `pa cannot reach pc (${pc.ip}) on edge-c`);

  step('Start warren-agent on every node: STUN finds each NAT, then the agents pick a path per peer');
  console.log(`    $ warren-agent run --config ${a.dir}/agent.yaml     # every node alike, STUN and TURN at ${formatEndpoint(lab.lab.turn.server)}`);
  const started = Date.now();
  await Promise.all(nodes.map((n) => lab.start(n)));
  const pathTo = async (from: ClusterNode, to: ClusterNode) => (await lab.status(from)).peers.find((p) => p.node === to.name)?.path;
  await waitFor('edge-a\'s paths', async () => await pathTo(a, c) === 'direct' && await pathTo(a, b) === 'relayed', 60_000, 200);
  console.log(`    edge-a has its paths ${((Date.now() - started) / 1000).toFixed(1)} s after the agents were started`);
  const statuses = await Promise.all(nodes.map((n) => lab.status(n)));
  show(table([['NODE', 'NAT MAPPING (STUN)', 'PUBLIC ENDPOINT', 'PEERS'],
    ...statuses.map((s) => [s.node, s.nat.mapping, s.nat.reflexive ?? '-', s.peers.map((p) => `${p.node} ${p.path}`).join(', ')])]));
  check(statuses.map((s) => s.nat.mapping).join() === 'endpoint-independent,endpoint-dependent,endpoint-independent',
    'edge-b\'s symmetric NAT maps per destination; edge-a\'s and edge-c\'s NATs keep one mapping');
  const peersOfA = statuses[0]!.peers.map((p) => `${p.node} ${p.path}`).sort().join();
  check(peersOfA === 'edge-b relayed,edge-c direct', 'edge-a reaches edge-c directly (a hole punched through three NATs), edge-b through the TURN relay');

  step('Pods on different nodes, by their own addresses');
  for (const [from, to, what] of [[pa, pc, 'pc on edge-c, direct'], [pa, pb, 'pb on edge-b, relayed through TURN'], [pc, pb, 'pb on edge-b, from edge-c']] as const) {
    await reachable(from, to.ip, 20_000); // the first packet may wait for the path; ping then checks
    await ping(from, to.ip, what);
  }

  step('What the receiving pod sees: its peer\'s own pod address (no NAT inside the overlay)');
  for (const to of [pc, pb]) {
    const stop = await serveWhoAmI(to.netns, `${to.name} on ${to.node.name}`);
    check(await whoAmI(pa, to.ip) === `${to.name} on ${to.node.name} sees you as ${pa.ip}`, `${to.name} sees pa's address ${pa.ip}`);
    await stop();
  }

  step('TCP throughput between pods (iperf3, 3 s to each)');
  for (const to of [pc, pb]) {
    const r = await iperf(pa, to, 3);
    show(`pa -> ${to.name} (${to.node.name}, ${to === pc ? 'direct' : 'relayed'}): ${r.mbps.toFixed(0)} Mbit/s`);
    check(r.mbps > 1 && r.source === pa.ip, `data flows, from ${pa.ip}`);
  }

  step('The OVS ports warren-cni created on edge-a, tagged with their pod');
  const ovsArgs = [`--db=${a.ovs.db}`, '--columns=name,external_ids', 'find', 'Interface', 'external_ids:warren-network=warren'];
  console.log(`    edge-a$ ovs-vsctl ${ovsArgs.join(' ')}`);
  const ports = await run('ovs-vsctl', ovsArgs);
  show(ports);
  check(['pa', 'pa2'].every((p) => ports.includes(`k8s-pod-name=${p}`)) && podResidue(await nodeState(a.site.host, a.ovs, a.ipamDir)).ports.length === 2, 'one port per container');

  step('Remove every container (podman calls warren-cni DEL): nothing may be left behind');
  for (const n of nodes) {
    await n.podman.podman(['rm', '-f', '-t', '0', ...pods.filter((p) => p.node === n).map((p) => p.name)]);
    const r = podResidue(await nodeState(n.site.host, n.ovs, n.ipamDir));
    const left = [...r.veths, ...r.ports, ...r.allocations, ...pods.filter((p) => p.node === n && existsSync(p.netns)).map((p) => p.netns)];
    console.log(`    ${n.name}: veths, OVS ports, IPAM addresses, container netns left: ${left.join(' ') || '(none)'}`);
    check(!left.length, `nothing left on ${n.name}`);
  }

  step('warren-agent status on edge-a: its peers, the path to each, handshakes and traffic');
  console.log(`    edge-a$ warren-agent status --socket ${a.socket}`);
  const status = (await a.site.host.exec(WARREN_AGENT, ['status', '--socket', a.socket])).stdout;
  show(status);
  const row = (peer: string) => status.split('\n').find((l) => l.startsWith(`${peer} `))?.split(/\s+/);
  check(row('edge-c')?.[1] === 'direct' && row('edge-b')?.[1] === 'relayed', 'edge-c direct, edge-b relayed');

  await sdewanDemo();
}

catchSignals();
const began = Date.now();
let code = 0;
try {
  await demo();
} catch (err) {
  // Ctrl-C reaches the commands too: what failed then is the interruption, not a check.
  console.error(`\n✘ ${interrupted ? `interrupted (${interrupted})` : (err as Error).message}`);
  code = 1;
} finally {
  console.log('\nTearing down (containers, agents, wireguard-go, OVS, coturn, etcd, namespaces, temporary files)...');
  if (!(await teardown())) code = 1;
  const left = leftovers();
  for (const l of left) console.error(`    ✘ left behind: ${l}`);
  if (left.length) code = 1;
  else console.log('    ✔ nothing left: no namespace, agent, wireguard-go, etcd, coturn, OVS or podman process, no temporary directory');
}
const secs = ((Date.now() - began) / 1000).toFixed(1);
console.log(code === 0 ? `\n✔ Demo passed in ${secs} s.` : `\n✘ Demo FAILED after ${secs} s.`);
process.exit(interrupted ? 130 : code);
