// The pool parameters stored in etcd by the cluster's first configgen. Every later
// allocation compares them inside its own transaction: two configgens with different
// podCIDR or nodeBits would otherwise hand out overlapping subnets of different sizes.
import { StoreDataError } from '../lib/etcd/errors.js';
import { get, kvOf, missing, put, text } from '../lib/etcd/ops.js';
import type { EtcdStore } from '../lib/etcd/store.js';
import { PoolMismatchError } from './errors.js';
import type { KeyLayout } from '../lib/etcd/keys.js';
import { carvePool, type Pool, type PoolParams } from './pool.js';

/** Canonical JSON (fixed key order): etcd compares it byte for byte. */
export function poolRecord(pool: Pool): string {
  const { podCIDR, nodeBits, hostCIDR } = pool.params;
  return JSON.stringify({ podCIDR, nodeBits, hostCIDR });
}

export function parsePoolRecord(key: string, value: string): PoolParams {
  try {
    const p = JSON.parse(value) as PoolParams;
    if (typeof p.podCIDR === 'string' && typeof p.nodeBits === 'number' && typeof p.hostCIDR === 'string') return p;
  } catch {
    // reported below
  }
  throw new StoreDataError(key, `holds ${JSON.stringify(value)}, not pool parameters {podCIDR, nodeBits, hostCIDR}`);
}

/** Pure: throws when the stored parameters are not the ones given, naming each difference. */
export function checkStoredPool(keys: KeyLayout, pool: Pool, stored: string): void {
  if (stored === poolRecord(pool)) return;
  const theirs = parsePoolRecord(keys.pool, stored);
  const diffs = (['podCIDR', 'nodeBits', 'hostCIDR'] as const)
    .filter((f) => theirs[f] !== pool.params[f])
    .map((f) => `${f} ${pool.params[f]} given, ${theirs[f]} stored`);
  throw new PoolMismatchError(`pool parameters differ from those stored in etcd at ${keys.pool}: ${diffs.join('; ')}. ` +
    'Every node must use the same pool; to re-carve, release every node and delete the key.');
}

/** Stores the parameters unless some configgen already did; then returns what is stored, for the caller to compare. */
export async function ensurePool(kv: Pick<EtcdStore, 'txn'>, keys: KeyLayout, pool: Pool): Promise<string | undefined> {
  const r = await kv.txn({ compare: [missing(keys.pool)], success: [put(keys.pool, poolRecord(pool))], failure: [get(keys.pool)] });
  return r.succeeded ? undefined : text(kvOf(r.responses[0])?.value);
}

/** The pool as stored, carved; for commands that take it from etcd rather than from flags. */
export async function readStoredPool(kv: Pick<EtcdStore, 'range'>, keys: KeyLayout, missingHint: string): Promise<Pool> {
  const stored = (await kv.range({ key: Buffer.from(keys.pool) })).kvs[0];
  if (!stored) throw new StoreDataError(keys.pool, `is missing: ${missingHint}`);
  return carvePool(parsePoolRecord(keys.pool, text(stored.value)), (field) => `${field} stored at ${keys.pool}`);
}
