// Frees a node's subnet and host-overlay address: the node key and the two keys naming
// it go in one transaction, guarded by the node key's revision so that a concurrent
// re-allocation is never half-deleted. Releasing a node that holds nothing succeeds.
// The node's agent record goes in the same transaction: its peers drop it at once
// instead of when its lease runs out (a released node is one that left the cluster).
import { StoreDataError } from '../lib/etcd/errors.js';
import { del, get, kvOf, text, unchangedSince, valueIs } from '../lib/etcd/ops.js';
import type { ICompare, IRequestOp } from 'etcd3';
import type { Kv } from './allocate.js';
import { indexWidth, type KeyLayout } from '../lib/etcd/keys.js';
import { parsePoolRecord } from './pool-record.js';
import type { NodeAllocation } from './pool.js';

export async function release(kv: Kv, keys: KeyLayout, node: string): Promise<NodeAllocation | undefined> {
  const nodeKey = keys.node(node);
  for (;;) {
    // One read for both: the pool's nodeBits fixes the subnet keys' width.
    const read = await kv.txn({ compare: [], success: [get(keys.pool), get(nodeKey)], failure: [] });
    const [poolKv, nodeKv] = read.responses.map(kvOf);
    if (!nodeKv) return undefined;
    if (!poolKv) throw new StoreDataError(keys.pool, `is missing while ${nodeKey} exists`);
    const subnets = 2 ** parsePoolRecord(keys.pool, text(poolKv.value)).nodeBits;
    let a: NodeAllocation;
    try {
      a = JSON.parse(text(nodeKv.value)) as NodeAllocation;
    } catch (err) {
      throw new StoreDataError(nodeKey, 'does not hold JSON', { cause: err });
    }
    if (!Number.isInteger(a.index) || typeof a.hostAddress !== 'string') throw new StoreDataError(nodeKey, `holds ${text(nodeKv.value)}, not an allocation`);
    const subnetKey = keys.subnet(a.index, indexWidth(subnets));
    const hostKey = keys.host(a.hostAddress);
    // First try: all three keys as configgen wrote them. Else delete only what still
    // names this node (someone edited the store by hand), still in one transaction.
    const r = await kv.txn({
      compare: [unchangedSince(nodeKey, nodeKv.mod_revision), valueIs(subnetKey, node), valueIs(hostKey, node)],
      success: [del(nodeKey), del(subnetKey), del(hostKey), del(keys.agent(node))],
      failure: [get(nodeKey), get(subnetKey), get(hostKey)],
    });
    if (r.succeeded) return a;
    const [nowNode, subnetKv, hostKv] = r.responses.map(kvOf);
    if (!nowNode || nowNode.mod_revision !== nodeKv.mod_revision) continue;
    const compare: ICompare[] = [unchangedSince(nodeKey, nodeKv.mod_revision)];
    const success: IRequestOp[] = [del(nodeKey), del(keys.agent(node))];
    for (const [key, kv_] of [[subnetKey, subnetKv], [hostKey, hostKv]] as const) {
      if (kv_ && text(kv_.value) === node) {
        compare.push(valueIs(key, node));
        success.push(del(key));
      }
    }
    const r2 = await kv.txn({ compare, success, failure: [] });
    if (r2.succeeded) return a;
  }
}
