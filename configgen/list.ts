// Every allocation in the store, with the pool they were carved from.
import { text } from '../lib/etcd/ops.js';
import { readPrefix } from '../lib/etcd/read-prefix.js';
import type { Kv } from './allocate.js';
import type { KeyLayout } from '../lib/etcd/keys.js';
import { parsePoolRecord } from './pool-record.js';
import type { NodeAllocation, PoolParams } from './pool.js';

export interface Listing {
  pool: PoolParams | null;
  allocations: NodeAllocation[];
}

export async function listAllocations(kv: Kv, keys: KeyLayout): Promise<Listing> {
  const poolKv = (await kv.range({ key: Buffer.from(keys.pool) })).kvs[0];
  const pool = poolKv ? parsePoolRecord(keys.pool, text(poolKv.value)) : null;
  const { kvs } = await readPrefix(kv, keys.nodes);
  const allocations = kvs.map((k) => {
    try {
      return JSON.parse(text(k.value)) as NodeAllocation;
    } catch {
      return { node: text(k.key).slice(keys.nodes.length), index: -1, podSubnet: '?', gateway: '?', hostAddress: '?' };
    }
  });
  allocations.sort((a, b) => a.index - b.index || a.node.localeCompare(b.node));
  return { pool, allocations };
}

/** Pure: the human table, columns padded to their widest cell. */
export function formatTable(listing: Listing): string {
  const rows = [['NODE', 'POD SUBNET', 'GATEWAY', 'HOST ADDRESS'],
    ...listing.allocations.map((a) => [a.node, a.podSubnet, a.gateway, a.hostAddress])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
  const p = listing.pool;
  const head = p ? `pool ${p.podCIDR} nodeBits ${p.nodeBits}, host CIDR ${p.hostCIDR}: ${listing.allocations.length} node(s)` : 'no pool stored yet: 0 node(s)';
  return [head, ...lines].join('\n') + '\n';
}
