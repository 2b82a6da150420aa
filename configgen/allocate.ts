// Claims a pod subnet and host-overlay address for one node with a single etcd
// transaction per attempt:
//   If(pool unchanged AND node key missing AND subnet i missing AND host address i missing)
//   Then(put subnet i = node, put host i = node, put node = allocation)
//   Else(get pool, get node, get subnet i, get host i, keys-only range of subnets i..i+W)
// Either all three keys land or none: no half-written allocation exists, even when the
// process dies mid-way, and a retried transaction that had in fact committed finds its
// own node key and returns it (idempotent). Candidates start at a hash of the node name
// (a re-joining node tends to get its old subnet back); when that subnet is taken, the
// failed transaction has already read the next window of subnet keys, whose gaps are
// free subnets, so the next attempt claims one of them directly. The cost per allocation
// is one transaction, plus one per collision, whatever the number of nodes allocated;
// only a window with no gap at all (a pool nearly full) costs further reads.
import type { IRangeRequest, IRangeResponse } from 'etcd3';
import type { EtcdStore } from '../lib/etcd/store.js';
import { StoreDataError } from '../lib/etcd/errors.js';
import { fnv1a32 } from '../lib/fnv.js';
import { get, kvOf, missing, put, text, valueIs } from '../lib/etcd/ops.js';
import { PoolExhaustedError } from './errors.js';
import { indexWidth, prefixEnd, type KeyLayout } from '../lib/etcd/keys.js';
import { ensurePool, poolRecord, checkStoredPool } from './pool-record.js';
import { allocationAt, isConsistent, type NodeAllocation, type Pool } from './pool.js';

export type Kv = Pick<EtcdStore, 'txn' | 'range'>;

export interface AllocateRequest {
  kv: Kv;
  keys: KeyLayout;
  pool: Pool;
  node: string;
  /** Picks among free candidates; injected so tests can force collisions. */
  random?: () => number;
  /** Subnet keys read per gap search. */
  window?: number;
}

export interface AllocateResult {
  allocation: NodeAllocation;
  /** False when the node already had this allocation. */
  created: boolean;
}

export const DEFAULT_WINDOW = 256;

/** Pure: the node's first candidate index (FNV-1a of its name). */
export function homeIndex(node: string, capacity: number): number {
  return fnv1a32(node) % capacity;
}

/** Pure: the indexes of [start, end) absent from `taken`. */
export function gaps(start: number, end: number, taken: ReadonlySet<number>): number[] {
  const free: number[] = [];
  for (let i = start; i < end; i++) if (!taken.has(i)) free.push(i);
  return free;
}

export function parseAllocation(key: string, value: string, pool: Pool): NodeAllocation {
  let a: NodeAllocation;
  try {
    a = JSON.parse(value) as NodeAllocation;
  } catch (err) {
    throw new StoreDataError(key, 'does not hold JSON', { cause: err });
  }
  if (!a || typeof a !== 'object' || !isConsistent(pool, a)) {
    throw new StoreDataError(key, `holds ${value}, which is not an allocation of pool ${pool.params.podCIDR} with nodeBits ${pool.params.nodeBits}`);
  }
  return a;
}

export function serializeAllocation(a: NodeAllocation): string {
  return JSON.stringify({ node: a.node, index: a.index, podSubnet: a.podSubnet, gateway: a.gateway, hostAddress: a.hostAddress });
}

export async function allocate(req: AllocateRequest): Promise<AllocateResult> {
  const { kv, keys, pool, node } = req;
  const random = req.random ?? Math.random;
  const width = indexWidth(pool.subnets);
  const expectedPool = poolRecord(pool);
  const nodeKey = keys.node(node);
  // Indexes whose host address is held while the subnet is not (hand-edited store):
  // the window read cannot see them, so they are remembered here.
  const hostTaken = new Set<number>();
  let candidate = homeIndex(node, pool.capacity);

  // Every failed claim means another node got a subnet (or the pool is full, which the
  // search reports): the number of attempts is bounded by the pool's capacity.
  for (let attempt = 0; attempt <= 2 * pool.capacity + 2; attempt++) {
    const a = allocationAt(pool, node, candidate);
    const subnetKey = keys.subnet(candidate, width);
    const hostKey = keys.host(a.hostAddress);
    const window = windowRequest(keys, pool, candidate, req.window ?? DEFAULT_WINDOW);
    const r = await kv.txn({
      compare: [valueIs(keys.pool, expectedPool), missing(nodeKey), missing(subnetKey), missing(hostKey)],
      success: [put(subnetKey, node), put(hostKey, node), put(nodeKey, serializeAllocation(a))],
      failure: [get(keys.pool), get(nodeKey), get(subnetKey), get(hostKey), { request_range: window.request }],
    });
    if (r.succeeded) return { allocation: a, created: true };

    const [poolKv, nodeKv, subnetKv, hostKv] = r.responses.map(kvOf);
    if (!poolKv) {
      await ensurePool(kv, keys, pool);
      continue;
    }
    checkStoredPool(keys, pool, text(poolKv.value));
    if (nodeKv) return { allocation: parseAllocation(nodeKey, text(nodeKv.value), pool), created: false };
    if (hostKv && !subnetKv) hostTaken.add(candidate);
    const free = gapsIn(keys, window.from, window.to, r.responses[4]?.response_range, hostTaken);
    candidate = free.length > 0 ? free[Math.floor(random() * free.length)]!
      : await findFree(kv, keys, pool, window.to === pool.capacity ? 0 : window.to, hostTaken, random, req.window ?? DEFAULT_WINDOW);
  }
  throw new Error(`no subnet claimed for ${node} after ${2 * pool.capacity + 2} attempts`);
}

/** The keys-only read of subnet keys [from, from + size), clipped to the pool. */
function windowRequest(keys: KeyLayout, pool: Pool, from: number, size: number): { from: number; to: number; request: IRangeRequest } {
  const width = indexWidth(pool.subnets);
  const to = Math.min(from + size, pool.capacity);
  const end = to === pool.subnets ? prefixEnd(keys.subnets) : keys.subnet(to, width);
  return { from, to, request: { key: Buffer.from(keys.subnet(from, width)), range_end: Buffer.from(end), keys_only: true } };
}

function gapsIn(keys: KeyLayout, from: number, to: number, r: IRangeResponse | undefined, hostTaken: ReadonlySet<number>): number[] {
  const taken = new Set((r?.kvs ?? []).map((k) => Number(k.key.toString('utf8').slice(keys.subnets.length))));
  for (const i of hostTaken) taken.add(i);
  return gaps(from, to, taken);
}

/**
 * A free index found with keys-only range reads of subnet keys, window by window from
 * `start` (wrapping), for when the window read with the claim had no gap. A full pool
 * is confirmed with one count so that the search stops without reading the whole pool.
 */
async function findFree(kv: Kv, keys: KeyLayout, pool: Pool, start: number, hostTaken: ReadonlySet<number>,
  random: () => number, size: number): Promise<number> {
  let from = start;
  let counted = false;
  for (let scanned = 0; scanned < pool.capacity;) {
    if (!counted) {
      counted = true;
      const allocated = await countAllocated(kv, keys);
      if (allocated >= pool.capacity) throw poolFull(pool, allocated);
    }
    const window = windowRequest(keys, pool, from, size);
    const free = gapsIn(keys, window.from, window.to, await kv.range(window.request), hostTaken);
    if (free.length > 0) return free[Math.floor(random() * free.length)]!;
    scanned += window.to - window.from;
    from = window.to === pool.capacity ? 0 : window.to;
  }
  throw poolFull(pool, await countAllocated(kv, keys));
}

export async function countAllocated(kv: Kv, keys: KeyLayout): Promise<number> {
  const r = await kv.range({ key: Buffer.from(keys.subnets), range_end: Buffer.from(prefixEnd(keys.subnets)), count_only: true });
  return Number(r.count);
}

export function poolFull(pool: Pool, allocated: number): PoolExhaustedError {
  const p = pool.params;
  if (pool.hostAddresses < pool.subnets) {
    return new PoolExhaustedError(`host CIDR ${p.hostCIDR} is full: ${allocated} of ${pool.hostAddresses} host-overlay addresses allocated (pod pool ${p.podCIDR} with nodeBits ${p.nodeBits} has ${pool.subnets} subnets)`);
  }
  return new PoolExhaustedError(`pod pool ${p.podCIDR} with nodeBits ${p.nodeBits} is full: ${allocated} of ${pool.subnets} subnets allocated`);
}
