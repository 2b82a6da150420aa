// The built binary against a real etcd: what one node gets, what a rerun changes
// (nothing), what release frees and what list shows.
import { execFile } from 'node:child_process';
import { copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { allocationAt, carvePool } from '../../../configgen/pool.js';
import { homeIndex } from '../../../configgen/allocate.js';
import { authOffLine, CONFIGGEN, configgen, configgenFixture, listJson, nodeArgs } from './run.js';

const fx = configgenFixture();
const node = () => fx.node();

describe('warren-configgen allocation', () => {
  it('gives a node a subnet and host address, records them in etcd and writes conflist and node.json', async () => {
    const a = node();
    const r = await configgen(nodeArgs(fx.etcd, a, 'node-a'));
    expect(r.exitCode, r.stderr).toBe(0);
    const file = a.nodeFile();
    expect(file).toMatchObject({ node: 'node-a', podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16', mtu: 1420, bridge: 'warren0' });
    const subnet = file.podSubnet as string;
    expect(subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
    const third = subnet.split('.')[2];
    expect(file.gateway).toBe(`10.244.${third}.1`);
    expect(r.stdout).toContain(`node-a: pod subnet ${subnet}, gateway 10.244.${third}.1`);

    const plugin = (a.conflist().plugins as Record<string, unknown>[])[0]!;
    expect(plugin.ipam).toEqual({ type: 'host-local', ranges: [[{ subnet, rangeStart: `10.244.${third}.2`, rangeEnd: `10.244.${third}.254`, gateway: `10.244.${third}.1` }]] });

    const keys = await fx.etcd.dump('/warren/');
    const index = Number(third);
    expect(keys.get(`/warren/subnets/${String(index).padStart(3, '0')}`)).toBe('node-a');
    expect(keys.get(`/warren/hosts/${file.hostAddress as string}`)).toBe('node-a');
    expect(JSON.parse(keys.get('/warren/nodes/node-a')!)).toMatchObject({ podSubnet: subnet, hostAddress: file.hostAddress });
    expect(JSON.parse(keys.get('/warren/pool')!)).toEqual({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    expect(keys.size).toBe(4);
  });

  it('is idempotent: a rerun returns the same allocation and rewrites no file', async () => {
    const a = node();
    expect((await configgen(nodeArgs(fx.etcd, a, 'node-a'))).exitCode).toBe(0);
    const conflist = join(a.confDir, '10-warren.conflist');
    const nodeFile = join(a.stateDir, 'node.json');
    const before = [statSync(conflist, { bigint: true }), statSync(nodeFile, { bigint: true })];
    const keysBefore = await fx.etcd.etcdctl(['get', '--prefix', '/warren/', '-w', 'json']);

    const again = await configgen(nodeArgs(fx.etcd, a, 'node-a'));
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/already allocated\); \S+ unchanged; \S+ unchanged/);
    const after = [statSync(conflist, { bigint: true }), statSync(nodeFile, { bigint: true })];
    expect(after.map((s) => [s.ino, s.mtimeNs])).toEqual(before.map((s) => [s.ino, s.mtimeNs]));
    // Not even a revision moved: the rerun wrote nothing to etcd either.
    const revision = (j: string) => (JSON.parse(j) as { header: { revision: number } }).header.revision;
    expect(revision(await fx.etcd.etcdctl(['get', '--prefix', '/warren/', '-w', 'json']))).toBe(revision(keysBefore));
  });

  it('with --no-conflist allocates and writes node.json only, and a later run writes the conflist for the same allocation', async () => {
    const a = node();
    const first = await configgen([...nodeArgs(fx.etcd, a, 'node-a'), '--no-conflist']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout).toContain('no conflist (--no-conflist)');
    expect(() => statSync(join(a.confDir, '10-warren.conflist'))).toThrow(/ENOENT/);
    const subnet = a.nodeFile().podSubnet;

    const later = await configgen(nodeArgs(fx.etcd, a, 'node-a'));
    expect(later.exitCode, later.stderr).toBe(0);
    expect(later.stdout).toMatch(/already allocated\); \S+ written; \S+ unchanged/);
    expect((a.conflist().plugins as { ipam: { ranges: { subnet: string }[][] } }[])[0]!.ipam.ranges[0]![0]!.subnet).toBe(subnet);
  });

  it('gives a reinstalled node (local files gone) its allocation back', async () => {
    const first = node();
    expect((await configgen(nodeArgs(fx.etcd, first, 'node-a'))).exitCode).toBe(0);
    const reinstalled = node();
    const r = await configgen(nodeArgs(fx.etcd, reinstalled, 'node-a', ['--mtu', '1380']));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(reinstalled.nodeFile()).toEqual({ ...first.nodeFile(), mtu: 1380 });
  });

  it('gives distinct nodes distinct subnets and host addresses', async () => {
    const names = ['n1', 'n2', 'n3', 'n4', 'n5'];
    for (const n of names) expect((await configgen(nodeArgs(fx.etcd, node(), n))).exitCode).toBe(0);
    const { allocations } = await listJson(fx.etcd);
    expect(allocations.map((a) => a.node).sort()).toEqual(names);
    expect(new Set(allocations.map((a) => a.podSubnet)).size).toBe(5);
    expect(new Set(allocations.map((a) => a.hostAddress)).size).toBe(5);
  });

  it('releases a node: its keys are gone, the subnet is free again, a second release is a no-op', async () => {
    const a = node();
    expect((await configgen(nodeArgs(fx.etcd, a, 'node-a'))).exitCode).toBe(0);
    expect((await configgen(nodeArgs(fx.etcd, node(), 'node-b'))).exitCode).toBe(0);
    const subnet = a.nodeFile().podSubnet as string;

    // The node's agent record (kept by its warren-agent under a lease) goes with it.
    await fx.etcd.etcdctl(['put', '/warren/agents/node-a', '{"node":"node-a"}']);
    await fx.etcd.etcdctl(['put', '/warren/agents/node-b', '{"node":"node-b"}']);
    const rel = await configgen(['release', '--node', 'node-a', '--etcd-endpoints', fx.etcd.endpoint]);
    expect(rel.exitCode, rel.stderr).toBe(0);
    expect(rel.stdout).toBe(`node-a: released pod subnet ${subnet} and host address ${a.nodeFile().hostAddress as string}\n`);
    const keys = [...(await fx.etcd.dump('/warren/')).keys()].sort();
    expect(keys.filter((k) => !k.endsWith('/pool'))).toHaveLength(4); // node-b's three keys and its agent record
    expect(keys.some((k) => k.includes('node-a'))).toBe(false);

    const again = await configgen(['release', '--node', 'node-a', '--etcd-endpoints', fx.etcd.endpoint]);
    expect([again.exitCode, again.stdout]).toEqual([0, 'node-a: holds no allocation, nothing to release\n']);

    // Re-joining, the node starts from the same candidate and finds its old subnet free.
    const rejoin = node();
    expect((await configgen(nodeArgs(fx.etcd, rejoin, 'node-a'))).exitCode).toBe(0);
    expect(rejoin.nodeFile().podSubnet).toBe(subnet);
  });

  it('lists allocations as a table and as JSON', async () => {
    expect((await configgen(nodeArgs(fx.etcd, node(), 'node-a'))).exitCode).toBe(0);
    const table = await configgen(['list', '--etcd-endpoints', fx.etcd.endpoint]);
    expect(table.exitCode, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('pool 10.244.0.0/16 nodeBits 8, host CIDR 10.10.0.0/16: 1 node(s)');
    expect(lines[1]).toMatch(/^NODE +POD SUBNET +GATEWAY +HOST ADDRESS$/);
    expect(lines[2]).toMatch(/^node-a +10\.244\.\d+\.0\/24 +10\.244\.\d+\.1 +10\.10\.\d+\.\d+$/);
    const json = await listJson(fx.etcd);
    expect(json.pool).toEqual({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    expect(json.allocations).toHaveLength(1);
  });

  it('refuses a node whose pool parameters differ from the stored ones, naming both', async () => {
    expect((await configgen(nodeArgs(fx.etcd, node(), 'node-a'))).exitCode).toBe(0);
    const b = node();
    const r = await configgen(nodeArgs(fx.etcd, b, 'node-b', ['--node-bits', '10']));
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toBe(authOffLine(fx.etcd) + 'warren-configgen: pool parameters differ from those stored in etcd at /warren/pool: nodeBits 10 given, 8 stored. ' +
      'Every node must use the same pool; to re-carve, release every node and delete the key.\n');
    expect(b.wroteNothing()).toBe(true);
    expect((await listJson(fx.etcd)).allocations.map((a) => a.node)).toEqual(['node-a']);
  });

  it('keeps pools under different prefixes apart', async () => {
    expect((await configgen(nodeArgs(fx.etcd, node(), 'node-a'))).exitCode).toBe(0);
    const r = await configgen(nodeArgs(fx.etcd, node(), 'node-a', ['--etcd-prefix', '/other', '--node-bits', '4']));
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await listJson(fx.etcd, ['--etcd-prefix', '/other'])).pool).toMatchObject({ nodeBits: 4 });
  });

  it('runs as a single file: copied away from the repository and its node_modules, started from /', async () => {
    const a = node();
    const copy = join(a.root, 'warren-configgen');
    copyFileSync(CONFIGGEN, copy);
    const { stdout } = await promisify(execFile)(copy, nodeArgs(fx.etcd, a, 'node-a'), { cwd: '/', env: { PATH: process.env.PATH } });
    expect(stdout).toMatch(/^node-a: pod subnet 10\.244\.\d+\.0\/24/);
    expect(a.nodeFile()).toMatchObject({ node: 'node-a' });
  });

  it('steps around a subnet whose host address someone else holds, leaving that key alone', async () => {
    const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    const home = allocationAt(pool, 'node-a', homeIndex('node-a', pool.capacity));
    await fx.etcd.etcdctl(['put', `/warren/hosts/${home.hostAddress}`, 'intruder']);
    const a = node();
    const r = await configgen(nodeArgs(fx.etcd, a, 'node-a'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(a.nodeFile().podSubnet).not.toBe(home.podSubnet);
    expect((await fx.etcd.dump('/warren/hosts/')).get(`/warren/hosts/${home.hostAddress}`)).toBe('intruder');
  });

  it('refuses pool data it cannot read, with exit status 7', async () => {
    await fx.etcd.etcdctl(['put', '/warren/pool', 'not json']);
    const a = node();
    const r = await configgen(nodeArgs(fx.etcd, a, 'node-a'));
    expect(r.exitCode).toBe(7);
    expect(r.stderr).toBe(authOffLine(fx.etcd) + 'warren-configgen: etcd key /warren/pool holds "not json", not pool parameters {podCIDR, nodeBits, hostCIDR}\n');
    expect(a.wroteNothing()).toBe(true);
  });
});
