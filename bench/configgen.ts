// Allocation throughput of warren-configgen's allocator against a local etcd: every
// subnet of a nodeBits=12 pool (4096 nodes) claimed by 64 concurrent allocators, each
// with its own etcd client as separate nodes would have. Reports allocations per second
// and etcd round trips per allocation, and the same for Evio's walking allocator
// (bench/configgen-baseline.ts) measured in the same run on the same etcd. The walk
// costs about n/2 transactions per allocation, so it runs under a time budget: its
// figures cover the allocations it completed, the cheapest ones (an empty pool).
//
// Run alone with `npx tsx bench/configgen.ts`, or through `make bench`.
import { allocate } from '../configgen/allocate.js';
import { keyLayout } from '../lib/etcd/keys.js';
import { listAllocations } from '../configgen/list.js';
import { carvePool } from '../configgen/pool.js';
import { EtcdStore } from '../lib/etcd/store.js';
import { EtcdServer } from '../test/helpers/etcd.js';
import { fmt, ratio, summary } from './stats.js';
import { walkAllocate } from './configgen-baseline.js';

const NODE_BITS = 12;
const NODES = 2 ** NODE_BITS;
const ALLOCATORS = 64;
const BASELINE_BUDGET_MS = Number(process.env.WARREN_BENCH_BASELINE_MS ?? 20_000);
const TARGET_MS = 10_000;

interface Figures {
  allocated: number;
  ms: number;
  roundTrips: number;
  latencies: number[];
  /** Round trips of each allocation, in the order they started (pool filling up). */
  perAllocation: number[];
}

/** Runs `allocators` workers taking node numbers from one queue until done or out of time. */
async function drive(stores: EtcdStore[], deadline: number, one: (store: EtcdStore, n: number) => Promise<boolean>): Promise<Figures> {
  let next = 0;
  let allocated = 0;
  const latencies: number[] = [];
  const perAllocation: number[] = [];
  const started = performance.now();
  // Each store serves one worker, one call at a time: its counter's growth is the call's cost.
  await Promise.all(stores.map(async (store) => {
    while (next < NODES && performance.now() < deadline) {
      const n = next++;
      const t = performance.now();
      const rt = store.roundTrips;
      if (await one(store, n)) allocated++;
      latencies.push(performance.now() - t);
      perAllocation[n] = store.roundTrips - rt;
    }
  }));
  return { allocated, ms: performance.now() - started, roundTrips: stores.reduce((sum, s) => sum + s.roundTrips, 0), latencies, perAllocation };
}

function line(name: string, f: Figures): string {
  const s = summary(f.latencies);
  return `  ${name.padEnd(9)} ${String(f.allocated).padStart(4)} allocations in ${(f.ms / 1000).toFixed(2)} s: ` +
    `${(f.allocated / (f.ms / 1000)).toFixed(0)} allocations/s, ${(f.roundTrips / f.allocated).toFixed(2)} etcd round trips per allocation, ` +
    `latency p50 ${fmt(s.p50)} p99 ${fmt(s.p99)}`;
}

export async function benchConfiggen(): Promise<void> {
  const etcd = await EtcdServer.start();
  const stores: EtcdStore[] = [];
  const open = () => {
    const s = new EtcdStore({ endpoints: etcd.endpoint, timeoutMs: 60_000 });
    stores.push(s);
    return s;
  };
  try {
    console.log(`configgen: ${NODES} nodes (nodeBits ${NODE_BITS}), ${ALLOCATORS} concurrent allocators, local etcd ${etcd.endpoint}`);
    const keys = keyLayout('/bench-warren');
    const pool = carvePool({ podCIDR: '10.128.0.0/9', nodeBits: NODE_BITS, hostCIDR: '10.10.0.0/16' });
    const warrenStores = Array.from({ length: ALLOCATORS }, open);
    const warren = await drive(warrenStores, Infinity, async (kv, n) => (await allocate({ kv, keys, pool, node: `node-${n}` })).created);

    // Check the result before reporting it: every node its own subnet, the pool full.
    const listing = await listAllocations(warrenStores[0]!, keys);
    const distinct = new Set(listing.allocations.map((a) => a.podSubnet)).size;
    if (warren.allocated !== NODES || distinct !== NODES) throw new Error(`expected ${NODES} distinct subnets, got ${warren.allocated} allocations, ${distinct} distinct`);
    const full = await allocate({ kv: warrenStores[0]!, keys, pool, node: 'one-too-many' }).then(() => 'allocated', (e: Error) => e.message);

    const walkStores = Array.from({ length: ALLOCATORS }, open);
    const walk = await drive(walkStores, performance.now() + BASELINE_BUDGET_MS,
      async (kv, n) => (await walkAllocate(kv, '/bench-walk', NODES, `node-${n}`)) !== undefined);

    console.log(line('warren', warren));
    console.log(line('walk', walk) + (walk.allocated < NODES ? ` (stopped after ${BASELINE_BUDGET_MS / 1000} s)` : ''));
    const rate = (f: Figures) => f.allocated / f.ms;
    const rtt = (f: Figures) => f.roundTrips / f.allocated;
    console.log(`  warren vs walk: ${ratio(rate(warren), rate(walk))} the allocations per second, ${ratio(rtt(walk), rtt(warren))} fewer round trips per allocation` +
      ` (a full walk would average about ${((NODES + 1) / 2).toFixed(0)} per allocation)`);
    const quarters = [0, 1, 2, 3].map((q) => {
      const slice = warren.perAllocation.slice((q * NODES) / 4, ((q + 1) * NODES) / 4);
      return (slice.reduce((a, b) => a + b, 0) / slice.length).toFixed(2);
    });
    console.log(`  warren round trips per allocation by pool fill (0-25%, 25-50%, 50-75%, 75-100%): ${quarters.join(', ')}`);
    console.log(`  all ${NODES} in ${(warren.ms / 1000).toFixed(2)} s: ${warren.ms < TARGET_MS ? 'within' : 'OVER'} the ${TARGET_MS / 1000} s target; one more node: "${full}"`);
  } finally {
    for (const s of stores) s.close();
    await etcd.destroy();
  }
}

if (process.argv[1] && /configgen\.ts$/.test(process.argv[1])) {
  await benchConfiggen();
}
