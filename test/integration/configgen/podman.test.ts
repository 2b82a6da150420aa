// The conflist warren-configgen writes, as is, driving warren-cni through podman (libcni)
// on an emulated node: configgen runs inside the node's namespace, reaches etcd over the
// node's uplink, derives the pod MTU from that uplink, and containers then get addresses
// from the node's own subnet and reach each other and the gateway.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execRunner } from '../../../lib/runner.js';
import { EtcdServer } from '../../helpers/etcd.js';
import { Netns, uniqueName } from '../../helpers/netns.js';
import { startOvs, type OvsInstance } from '../../helpers/ovs.js';
import { Podman } from '../../helpers/podman.js';
import { run } from '../../helpers/sh.js';
import { CONFIGGEN, NodeDirs, requireBinary } from './run.js';

const UPLINK_MTU = 1500;
let node: Netns;
let bare: Netns;
let hostSide: string;
let etcd: EtcdServer;
let ovs: OvsInstance;
let podman: Podman | undefined;
let dirs: NodeDirs;
let bareDirs: NodeDirs;
let scratch: string;

/** Runs the binary inside a namespace as the init container would (host network of the node). */
function configgenIn(ns: Netns, args: readonly string[]) {
  return execRunner('nsenter', [`--net=${ns.path}`, '--', CONFIGGEN, ...args], { env: { PATH: process.env.PATH }, replaceEnv: true, allowFailure: true });
}

beforeAll(async () => {
  requireBinary();
  node = await Netns.create('cgn');
  bare = await Netns.create('cgb');
  scratch = mkdtempSync(join(tmpdir(), 'warren-cg-podman-'));
  dirs = new NodeDirs();
  bareDirs = new NodeDirs();
  // The node's uplink: a veth to the host namespace, where etcd listens (TEST-NET-3).
  hostSide = uniqueName('up');
  await run('ip', ['link', 'add', hostSide, 'mtu', String(UPLINK_MTU), 'type', 'veth', 'peer', 'name', 'uplink', 'mtu', String(UPLINK_MTU), 'netns', node.name]);
  await run('ip', ['addr', 'add', '203.0.113.1/30', 'dev', hostSide]);
  await run('ip', ['link', 'set', hostSide, 'up']);
  await node.exec('ip', ['addr', 'add', '203.0.113.2/30', 'dev', 'uplink']);
  await node.exec('ip', ['link', 'set', 'uplink', 'up']);
  await node.exec('ip', ['route', 'add', 'default', 'via', '203.0.113.1']);
  etcd = await EtcdServer.start({ host: '203.0.113.1' });
  ovs = await startOvs(node);
});

afterAll(async () => {
  await podman?.destroy();
  await ovs?.stop();
  await etcd?.destroy();
  await node?.destroy(); // takes the veth pair with it
  await bare?.destroy();
  dirs?.destroy();
  bareDirs?.destroy();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the conflist warren-configgen writes', () => {
  it('drives warren-cni through podman: pods get addresses in the node\'s subnet, the uplink\'s MTU minus 80', async () => {
    const r = await configgenIn(node, [
      '--etcd-endpoints', etcd.endpoint, '--node-name', 'podman-node', '--pod-cidr', '10.244.0.0/16', '--node-bits', '8',
      '--cni-conf-dir', dirs.confDir, '--state-dir', dirs.stateDir, '--ovsdb', ovs.db,
      '--ipam-data-dir', join(scratch, 'ipam'), '--log-file', join(scratch, 'cni.log'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const conflist = dirs.conflist();
    const plugin = (conflist.plugins as Record<string, unknown>[])[0]!;
    expect(plugin.mtu).toBe(UPLINK_MTU - 80);
    const { podSubnet, gateway } = dirs.nodeFile() as { podSubnet: string; gateway: string };
    const prefix = podSubnet.split('.').slice(0, 3).join('.');

    podman = await Podman.create(node, { '10-warren': conflist });
    await podman.run('a', 'warren', ['sleep', '600']);
    await podman.run('b', 'warren', ['sleep', '600']);
    const addressOf = async (name: string) => {
      const out = (await podman!.exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
      return { address: /inet (\S+)\//.exec(out)?.[1], prefixLength: /inet \S+\/(\d+)/.exec(out)?.[1], mtu: /mtu (\d+)/.exec((await podman!.exec(name, ['ip', 'link', 'show', 'eth0'])).stdout)?.[1] };
    };
    const a = await addressOf('a');
    const b = await addressOf('b');
    expect(a.address).toMatch(new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.\\d+$`));
    expect(b.address).toMatch(new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.\\d+$`));
    expect(a.address).not.toBe(b.address);
    expect(a.address).not.toBe(gateway);
    expect([a.prefixLength, a.mtu]).toEqual(['24', String(UPLINK_MTU - 80)]);
    expect((await podman.exec('a', ['ping', '-c', '2', '-W', '2', b.address!], true)).exitCode).toBe(0);
    expect((await podman.exec('b', ['ping', '-c', '2', '-W', '2', gateway], true)).exitCode).toBe(0);
  });

  it('refuses to guess the MTU on a node without a default route, allocating nothing', async () => {
    const r = await configgenIn(bare, ['--etcd-endpoints', '127.0.0.1:1', '--node-name', 'bare', '--pod-cidr', '10.244.0.0/16', '--node-bits', '8',
      '--cni-conf-dir', bareDirs.confDir, '--state-dir', bareDirs.stateDir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('warren-configgen: no default route: cannot tell the uplink MTU; give the pod MTU with --mtu\n');
    expect(bareDirs.wroteNothing()).toBe(true);
  });
});
