// The allocation the default command uses, as a node's init container runs it: the one
// etcd holds for this node, read without writing anything (with etcd authentication on a
// node's credential may not write allocations), else a new one claimed by allocate(). A
// claim etcd refuses for lack of permission means authentication is on and the admin has
// not added this node yet (`warren-configgen admin add-node`): a node allocating for
// itself could pick any free subnet, so only the admin's credential may.
import { StorePermissionError } from '../lib/etcd/errors.js';
import { get, kvOf, text } from '../lib/etcd/ops.js';
import type { KeyLayout } from '../lib/etcd/keys.js';
import { allocate, parseAllocation, type AllocateResult, type Kv } from './allocate.js';
import { NodeNotAddedError } from './errors.js';
import { checkStoredPool } from './pool-record.js';
import type { Pool } from './pool.js';

export async function ownAllocation(kv: Kv, keys: KeyLayout, pool: Pool, node: string): Promise<AllocateResult> {
  const nodeKey = keys.node(node);
  let read;
  try {
    read = await kv.txn({ compare: [], success: [get(keys.pool), get(nodeKey)], failure: [] });
  } catch (err) {
    if (!(err instanceof StorePermissionError)) throw err;
    throw new NodeNotAddedError(`etcd refused this credential even reading node ${node}'s allocation (etcd authentication is on, ` +
      `and the credential is not one of a node an admin added): an admin runs \`warren-configgen admin add-node ${node}\` first, ` +
      `and the node uses the certificate issued for it (CN=${node})`, { cause: err });
  }
  const [poolKv, nodeKv] = read.responses.map(kvOf);
  if (poolKv) checkStoredPool(keys, pool, text(poolKv.value));
  if (poolKv && nodeKv) return { allocation: parseAllocation(nodeKey, text(nodeKv.value), pool), created: false };
  try {
    return await allocate({ kv, keys, pool, node });
  } catch (err) {
    if (!(err instanceof StorePermissionError)) throw err;
    throw new NodeNotAddedError(`node ${node} has no allocation, and etcd refused to create one with this node's credentials ` +
      `(etcd authentication is on): an admin runs \`warren-configgen admin add-node ${node}\` first`, { cause: err });
  }
}
