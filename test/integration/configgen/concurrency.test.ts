// Many configgens at once, against one real etcd: every node gets its own subnet and host
// address, and no key is left half-written. First 256 allocators in this process, each
// with its own etcd client, then 256 processes of the built binary started together.
import { afterEach, describe, expect, it } from 'vitest';
import { allocate } from '../../../configgen/allocate.js';
import { keyLayout } from '../../../lib/etcd/keys.js';
import { carvePool } from '../../../configgen/pool.js';
import { EtcdStore } from '../../../lib/etcd/store.js';
import { configgen, configgenFixture, listJson, nodeArgs, type ListedAllocation } from './run.js';

const N = 256;
const fx = configgenFixture();
let stores: EtcdStore[] = [];

afterEach(() => {
  for (const s of stores) s.close();
  stores = [];
});

/** Distinct subnets and addresses, and exactly one subnet key and one host key per node. */
async function expectNoDuplicates(allocations: readonly ListedAllocation[], n: number): Promise<void> {
  expect(allocations).toHaveLength(n);
  expect(new Set(allocations.map((a) => a.podSubnet)).size).toBe(n);
  expect(new Set(allocations.map((a) => a.hostAddress)).size).toBe(n);
  const keys = await fx.etcd.dump('/warren/');
  const owners = (prefix: string) => [...keys].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v).sort();
  const nodes = allocations.map((a) => a.node).sort();
  expect(owners('/warren/subnets/')).toEqual(nodes);
  expect(owners('/warren/hosts/')).toEqual(nodes);
}

describe(`${N} concurrent allocations`, () => {
  it(`gives ${N} in-process allocators (own etcd clients) ${N} distinct subnets, filling a nodeBits=8 pool`, async () => {
    const keys = keyLayout('/warren');
    const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    stores = Array.from({ length: N }, () => new EtcdStore({ endpoints: fx.etcd.endpoint, timeoutMs: 30_000 }));
    const results = await Promise.all(stores.map((kv, i) => allocate({ kv, keys, pool, node: `node-${i}` })));
    expect(results.every((r) => r.created)).toBe(true);
    await expectNoDuplicates((await listJson(fx.etcd)).allocations, N);
    // The pool is now exactly full.
    const extra = new EtcdStore({ endpoints: fx.etcd.endpoint, timeoutMs: 30_000 });
    stores.push(extra);
    await expect(allocate({ kv: extra, keys, pool, node: 'one-too-many' })).rejects.toThrow('is full: 256 of 256 subnets allocated');
  });

  it(`gives ${N} warren-configgen processes started at once ${N} distinct subnets and addresses`, async () => {
    const dirs = Array.from({ length: N }, () => fx.node());
    // nodeBits 9: the pool has twice the room, as a real cluster would.
    const runs = await Promise.all(dirs.map((d, i) => configgen(nodeArgs(fx.etcd, d, `proc-${i}`, ['--node-bits', '9', '--etcd-timeout', '120s']))));
    const failed = runs.filter((r) => r.exitCode !== 0);
    expect(failed.map((r) => r.stderr)).toEqual([]);
    const { allocations } = await listJson(fx.etcd);
    await expectNoDuplicates(allocations, N);
    // What each node wrote is what etcd holds for it.
    const byNode = new Map(allocations.map((a) => [a.node, a]));
    for (const [i, d] of dirs.entries()) {
      const file = d.nodeFile();
      expect(file.podSubnet).toBe(byNode.get(`proc-${i}`)!.podSubnet);
    }
  });
});
