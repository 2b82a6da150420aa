// podman (libcni, the library containerd and CRI-O use) as the runtime that executes
// warren-cni: containers get addresses, reach each other, the gateway and, masqueraded,
// a host outside the pod CIDR; removing them leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../../helpers/netns.js';
import { nodeState, podResidue } from '../../helpers/node-state.js';
import { startOvs, type OvsInstance } from '../../helpers/ovs.js';
import { cni } from '../../helpers/plugin.js';
import { Podman } from '../../helpers/podman.js';
import { run, waitFor } from '../../helpers/sh.js';

const NET = 'wpodman';
let node: Netns;
let outside: Netns;
let ovs: OvsInstance;
let podman: Podman;
let ipamData: string;
let server: ChildProcess | undefined;
let pluginConf: Record<string, unknown>;

beforeAll(async () => {
  node = await Netns.create('node');
  outside = await Netns.create('out');
  ovs = await startOvs(node);
  ipamData = mkdtempSync(join(tmpdir(), 'warren-ipam-'));
  // The node's uplink: a veth to a host outside the cluster (TEST-NET-2 addresses).
  await run('ip', ['link', 'add', 'uplink', 'netns', node.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside.name]);
  await node.exec('ip', ['addr', 'add', '198.51.100.1/24', 'dev', 'uplink']);
  await node.exec('ip', ['link', 'set', 'uplink', 'up']);
  await node.exec('ip', ['route', 'add', 'default', 'via', '198.51.100.2']);
  await outside.exec('ip', ['addr', 'add', '198.51.100.2/24', 'dev', 'eth0']);
  await outside.exec('ip', ['link', 'set', 'eth0', 'up']);
  // The outside host answers each TCP connection with the source address it sees.
  server = spawn('ip', ['netns', 'exec', outside.name, process.execPath, '-e',
    'require("net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(8080, "0.0.0.0", () => console.log("ready"))'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => server!.stdout!.once('data', () => resolve()));

  pluginConf = {
    type: 'warren', mtu: 1400, podCIDR: '10.244.0.0/16', ovsdb: ovs.db,
    ipam: { type: 'host-local', dataDir: ipamData, ranges: [[{ subnet: '10.244.7.0/24' }]] },
  };
  podman = await Podman.create(node, {
    [NET]: { cniVersion: '1.0.0', name: NET, plugins: [pluginConf, { type: 'portmap', capabilities: { portMappings: true }, snat: true }] },
  });
});

afterAll(async () => {
  server?.kill();
  await podman?.destroy();
  await ovs?.stop();
  await node?.destroy();
  await outside?.destroy();
  rmSync(ipamData, { recursive: true, force: true });
});

async function addressOf(name: string): Promise<string> {
  const out = (await podman.exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/24/.exec(out);
  if (!m) throw new Error(`no IPv4 address on ${name}'s eth0: ${out}`);
  return m[1]!;
}

describe('warren-cni under podman', () => {
  it('connects two containers to each other, the gateway and the outside, then cleans up', async () => {
    const idA = await podman.run('a', NET, ['sleep', '600']);
    await podman.run('b', NET, ['sh', '-c', 'while true; do echo hello-from-b | nc -l -p 5000; done']);
    const [a, b] = [await addressOf('a'), await addressOf('b')];
    expect(a).not.toBe(b);
    expect(a).toMatch(/^10\.244\.7\./);

    expect((await podman.exec('a', ['ping', '-c', '2', '-W', '2', b], true)).exitCode).toBe(0);
    expect((await podman.exec('b', ['ping', '-c', '2', '-W', '2', '10.244.7.1'], true)).exitCode).toBe(0);
    // TCP, not only ping: the userspace datapath's checksum trap shows only here.
    await waitFor('b to listen', async () => (await podman.exec('a', ['sh', '-c', `nc ${b} 5000 </dev/null`], true)).stdout.includes('hello-from-b'));
    const payload = (await podman.exec('a', ['sh', '-c', `head -c 200000 /dev/zero | nc ${b} 5000 | head -c 100`], true)).stdout;
    expect(payload).toContain('hello-from-b');
    // Leaving the pod CIDR: the outside host sees the node's address, not the pod's.
    const seen = (await podman.exec('a', ['sh', '-c', 'nc 198.51.100.2 8080 </dev/null'])).stdout.trim();
    expect(seen).toBe('198.51.100.1');

    // CHECK with the result libcni cached for this attachment.
    const cacheFile = `/var/lib/cni/results/${NET}-${idA}-eth0`;
    expect(existsSync(cacheFile)).toBe(true);
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { result: Record<string, unknown> };
    const netns = (cached.result.interfaces as { sandbox?: string }[]).find((i) => i.sandbox)!.sandbox!;
    const check = await cni({ node, command: 'CHECK', containerId: idA, netns, config: { cniVersion: '1.0.0', name: NET, ...pluginConf, prevResult: cached.result } });
    expect(check.exitCode, check.stdout).toBe(0);

    await podman.podman(['rm', '-f', '-t', '0', 'a', 'b']);
    const residue = podResidue(await nodeState(node, ovs, join(ipamData, NET)));
    expect(residue).toEqual({ veths: [], ports: [], allocations: [] });
  });
});
