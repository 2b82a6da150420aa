// The emulated cluster. AgentLab (test/helpers/agent-lab.ts) builds the internet, the NAT
// routers, coturn and the cluster's etcd, and runs warren-configgen and warren-agent on
// each node; here every node also gets its own Open vSwitch (before configgen, which then
// records it in the CNI config) and a podman whose CNI config directory is the very one
// warren-configgen wrote. Everything registers its undo and what must vanish (teardown.ts).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLab, WARREN_CONFIGGEN, type AgentNode } from '../../test/helpers/agent-lab.js';
import type { EtcdServer } from '../../test/helpers/etcd.js';
import type { Site, SiteKind } from '../../test/helpers/natlab.js';
import { startOvs, type OvsInstance } from '../../test/helpers/ovs.js';
import { Podman } from '../../test/helpers/podman.js';
import { mustVanish, onTeardown } from './teardown.js';

export interface NodeAllocation { node: string; podSubnet: string; gateway: string; hostAddress: string; mtu: number }

/** An AgentLab node (the same object: the lab starts and stops its agent) with its OVS and runtime. */
export interface ClusterNode extends AgentNode {
  ovs: OvsInstance;
  podman: Podman;
  /** The CNI network podman runs containers on: the conflist's name. */
  network: string;
  pods: string[];
  conflistPath: string;
  nodeFilePath: string;
  /** host-local's data directory for the network. */
  ipamDir: string;
}

const marked = (site: Site): void => {
  for (const ns of [site.host, ...site.routers]) mustVanish(`namespace ${ns.name}`, ns.path, ns.name);
};

/** Every node's OVS: stopped together (each daemon takes seconds to exit), after the runtimes, before the lab. */
const switches: OvsInstance[] = [];

export async function startLab(): Promise<AgentLab> {
  const lab = await AgentLab.create();
  onTeardown('the lab: agents, wireguard-go, etcd, coturn, namespaces', () => lab.destroy());
  onTeardown('every node\'s OVS', async () => {
    const failed = (await Promise.allSettled(switches.map((o) => o.stop()))).filter((r) => r.status === 'rejected');
    if (failed.length) throw new Error(failed.map((r) => String((r as PromiseRejectedResult).reason)).join('; '));
  });
  for (const ns of [lab.lab.internet, lab.lab.turnNs]) mustVanish(`namespace ${ns.name}`, ns.path, ns.name);
  mustVanish('etcd', lab.etcd.dir);
  mustVanish('coturn', lab.lab.dir);
  mustVanish('node directories (and agents reading them)', lab.dir);
  return lab;
}

/** A node behind a NAT of `kind`: namespace, OVS, warren-configgen, then podman on its conflist. */
export async function addNode(lab: AgentLab, kind: SiteKind, name: string): Promise<ClusterNode> {
  let ovs: OvsInstance | undefined;
  const node = await lab.addNode(kind, name, async (site) => {
    marked(site);
    ovs = await startOvs(site.host);
    switches.push(ovs);
    mustVanish(`${name} OVS`, ovs.dir);
    return ['--ovsdb', ovs.db];
  });
  mustVanish(`${name} wireguard-go`, `/var/run/wireguard/${node.ifname}.sock`, `wireguard-go -f ${node.ifname}`);
  const conflistPath = join(node.dir, 'net.d', '10-warren.conflist');
  const network = (JSON.parse(readFileSync(conflistPath, 'utf8')) as { name: string }).name;
  const pods: string[] = [];
  const podman = await Podman.create(node.site.host, {});
  onTeardown(`${name} podman`, async () => {
    await podman.destroy();
    // libcni keeps its cache when a DEL fails: remove it, and say so.
    const stale = pods.map((id) => `/var/lib/cni/results/${network}-${id}-eth0`).filter((f) => existsSync(f));
    stale.forEach((f) => rmSync(f));
    if (stale.length) throw new Error(`DEL failed for ${stale.length} container(s) on ${name}; removed libcni's cache`);
  });
  mustVanish(`${name} podman`, podman.dir);
  // podman's network_config_dir is the directory warren-configgen wrote: what it wrote is what libcni reads.
  rmSync(join(podman.dir, 'net.d'), { recursive: true });
  symlinkSync(join(node.dir, 'net.d'), join(podman.dir, 'net.d'));
  return Object.assign(node, { ovs: ovs!, podman, network, pods, conflistPath, nodeFilePath: join(node.dir, 'node.json'), ipamDir: join(node.dir, 'ipam', network) });
}

export const allocation = (n: ClusterNode): NodeAllocation => JSON.parse(readFileSync(n.nodeFilePath, 'utf8')) as NodeAllocation;
export const conflist = (n: ClusterNode): { name: string; plugins: Record<string, unknown>[] } => JSON.parse(readFileSync(n.conflistPath, 'utf8'));

/** The node's init container once more: the same binary, the same arguments, in the node. */
export async function rerunConfiggen(n: ClusterNode): Promise<string> {
  return (await n.site.host.exec(WARREN_CONFIGGEN, n.configgen.args)).stdout.trim();
}

export async function configgenList(n: ClusterNode, etcd: EtcdServer): Promise<{ args: string[]; table: string }> {
  const args = ['list', '--etcd-endpoints', etcd.endpoint];
  return { args, table: (await n.site.host.exec(WARREN_CONFIGGEN, args)).stdout.trimEnd() };
}

/** Content, inode and modification time of the node's conflist and node.json: equal means untouched. */
export const fingerprint = (n: ClusterNode): string => JSON.stringify([n.conflistPath, n.nodeFilePath].map((f) => {
  const s = statSync(f);
  return [readFileSync(f, 'utf8'), s.ino, s.mtimeMs];
}));

/** etcd's revision: it moves with every write, so an unchanged revision means nothing was written. */
export async function etcdRevision(etcd: EtcdServer): Promise<number> {
  const [status] = JSON.parse(await etcd.etcdctl(['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number } } }[];
  return status!.Status.header.revision;
}

/** A host on the emulated internet with a public address (no NAT), for pods to leave the cluster to. */
export async function addWebHost(lab: AgentLab): Promise<Site> {
  const site = await lab.lab.addSite('public');
  marked(site);
  await whoAmI(site.host.path, 'the web host');
  return site;
}

let servers = 0;
/**
 * A TCP server on :8080 in the network namespace at `netnsPath` (a node's, a pod's) that
 * answers every connection with the source address it sees. Returns its stop().
 */
export async function whoAmI(netnsPath: string, label: string): Promise<() => Promise<void>> {
  const token = `warren-demo-whoami-${process.pid}-${++servers}`;
  const server = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e',
    `require("net").createServer((s) => s.end(${JSON.stringify(label)} + " sees you as " + s.remoteAddress + "\\n")).listen(8080, "0.0.0.0", () => console.log("ready"))`,
    token], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stop = async (): Promise<void> => { if (server.exitCode === null && server.signalCode === null) server.kill(); await exited; };
  onTeardown(`who-am-i server in ${label}`, stop);
  mustVanish(`who-am-i server in ${label}`, undefined, token);
  await new Promise<void>((resolve, reject) => {
    server.stdout.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`who-am-i server in ${label} exited (${code})`)));
  });
  return stop;
}
