// A full pool: a clear error naming the pool and its size, nothing written, and room
// again once a node is released.
import { describe, expect, it } from 'vitest';
import { authOffLine, configgen, configgenFixture, listJson } from './run.js';

const fx = configgenFixture();

function allocate(node: string, pool: string[]) {
  const d = fx.node();
  return { dirs: d, run: configgen(['--etcd-endpoints', fx.etcd.endpoint, '--node-name', node, '--cni-conf-dir', d.confDir, '--state-dir', d.stateDir, '--mtu', '1420', ...pool]) };
}

describe('a full pool', () => {
  const small = ['--pod-cidr', '10.244.0.0/24', '--node-bits', '2'];

  it('hands out every subnet, then refuses with the pool and its size', async () => {
    for (const n of ['a', 'b', 'c', 'd']) {
      const r = await allocate(n, small).run;
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const subnets = (await listJson(fx.etcd)).allocations.map((a) => a.podSubnet).sort();
    expect(subnets).toEqual(['10.244.0.0/26', '10.244.0.128/26', '10.244.0.192/26', '10.244.0.64/26']);

    const fifth = allocate('e', small);
    const r = await fifth.run;
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toBe(authOffLine(fx.etcd) + 'warren-configgen: pod pool 10.244.0.0/24 with nodeBits 2 is full: 4 of 4 subnets allocated\n');
    expect(fifth.dirs.wroteNothing()).toBe(true);
    expect((await listJson(fx.etcd)).allocations).toHaveLength(4);

    // Nodes already allocated still get theirs back from a full pool.
    expect((await allocate('c', small).run).exitCode).toBe(0);

    const rel = await configgen(['release', '--node', 'b', '--etcd-endpoints', fx.etcd.endpoint]);
    expect(rel.exitCode, rel.stderr).toBe(0);
    const retry = await allocate('e', small).run;
    expect(retry.exitCode, retry.stderr).toBe(0);
  });

  it('names the host CIDR when host-overlay addresses run out first', async () => {
    const pool = [...small, '--host-cidr', '10.10.0.0/30']; // two usable addresses
    expect((await allocate('a', pool).run).exitCode).toBe(0);
    expect((await allocate('b', pool).run).exitCode).toBe(0);
    const r = await allocate('c', pool).run;
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toBe(authOffLine(fx.etcd) + 'warren-configgen: host CIDR 10.10.0.0/30 is full: 2 of 2 host-overlay addresses allocated (pod pool 10.244.0.0/24 with nodeBits 2 has 4 subnets)\n');
  });
});
