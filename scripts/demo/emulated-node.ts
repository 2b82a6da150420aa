// The emulated machines: a host outside the cluster, and nodes (a network namespace with
// its own Open vSwitch and an uplink to the outside), whose runtime is podman configured
// with the node's CNI config directory.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Netns } from '../../test/helpers/netns.js';
import { startOvs, type OvsInstance } from '../../test/helpers/ovs.js';
import { Podman } from '../../test/helpers/podman.js';
import { run, waitFor } from '../../test/helpers/sh.js';
import { mustVanish, onTeardown } from './teardown.js';

export interface EmulatedNode { name: string; ns: Netns; ovs: OvsInstance }
export interface RuntimeNode extends EmulatedNode { podman: Podman; network: string; pods: string[] }

async function createNetns(prefix: string, what: string): Promise<Netns> {
  const ns = await Netns.create(prefix);
  onTeardown(what, () => ns.destroy());
  mustVanish(what, ns.path, ns.name);
  return ns;
}

/** The "outside": one namespace whose TCP server on :8080 answers with the address it sees. */
export async function createOutside(): Promise<Netns> {
  const ns = await createNetns('out', 'outside namespace');
  const server = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e',
    'require("net").createServer((s) => s.end("you are " + s.remoteAddress + "\\n")).listen(8080, "0.0.0.0", () => console.log("ready"))'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  onTeardown('outside server', async () => { server.kill(); await exited; });
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

/** An emulated node: namespace, private OVS, and an uplink veth to `outside` carrying its default route. */
export async function createNode(name: string, outside: Netns, uplink: { node: string; host: string }): Promise<EmulatedNode> {
  const ns = await createNetns(name, `${name} namespace`);
  const ovs = await startOvs(ns);
  onTeardown(`${name} OVS`, () => stopOvs(ovs));
  mustVanish(`${name} OVS`, ovs.dir);
  await run('ip', ['link', 'add', 'uplink', 'netns', ns.name, 'type', 'veth', 'peer', 'name', `to-${name}`, 'netns', outside.name]);
  await ns.exec('ip', ['addr', 'add', `${uplink.node}/24`, 'dev', 'uplink']);
  await ns.exec('ip', ['link', 'set', 'uplink', 'up']);
  await ns.exec('ip', ['route', 'add', 'default', 'via', uplink.host]);
  await outside.exec('ip', ['addr', 'add', `${uplink.host}/24`, 'dev', `to-${name}`]);
  await outside.exec('ip', ['link', 'set', `to-${name}`, 'up']);
  console.log(`    node ${name}: namespace ${ns.name}, OVS at ${ovs.db}, uplink ${uplink.node} -> outside ${uplink.host}`);
  return { name, ns, ovs };
}

/**
 * The node's container runtime: a podman whose network_config_dir is the node's CNI config
 * directory itself (what warren-configgen wrote is what libcni reads), running `network`.
 */
export async function startRuntime(node: EmulatedNode, cniConfDir: string, network: string): Promise<RuntimeNode> {
  const podman = await Podman.create(node.ns, {});
  const pods: string[] = [];
  onTeardown(`${node.name} podman`, async () => {
    await podman.destroy();
    // libcni keeps its cache when a DEL fails: remove it, and say so.
    const stale = pods.map((id) => `/var/lib/cni/results/${network}-${id}-eth0`).filter((f) => existsSync(f));
    stale.forEach((f) => rmSync(f));
    if (stale.length) throw new Error(`DEL failed for ${stale.length} container(s); removed libcni's cache`);
  });
  mustVanish(`${node.name} podman`, podman.dir);
  rmSync(join(podman.dir, 'net.d'), { recursive: true });
  symlinkSync(cniConfDir, join(podman.dir, 'net.d'));
  return { ...node, podman, network, pods };
}
