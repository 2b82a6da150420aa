// `warren-configgen admin add-node NAME`: the node's allocation, claimed with the admin's
// credential (allocate(), the same transaction a node ran for itself before etcd
// authentication), then its etcd role and user brought to what identity.ts says. The
// role comes before the user so that the user never exists without it; the allocation
// comes first so that a node whose credential works finds its allocation waiting.
import type { KeyLayout } from '../../lib/etcd/keys.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { allocate } from '../allocate.js';
import { readStoredPool } from '../pool-record.js';
import type { NodeAllocation, Pool } from '../pool.js';
import { ensureRole, ensureUser, type Change } from './etcd-auth.js';
import { nodeIdentity, type NodeIdentity } from './identity.js';

export interface AddNodeResult {
  allocation: NodeAllocation;
  created: boolean;
  identity: NodeIdentity;
  user: Change;
  role: Change;
}

/** `pool` undefined: the one `admin init` stored. */
export async function adminAddNode(store: EtcdStore, keys: KeyLayout, pool: Pool | undefined, node: string,
  gatewayCandidate: boolean): Promise<AddNodeResult> {
  const carved = pool ?? await readStoredPool(store, keys, 'run `warren-configgen admin init` first (it stores the pool), or give the pool flags');
  const { allocation, created } = await allocate({ kv: store, keys, pool: carved, node });
  const identity = nodeIdentity(keys, node, gatewayCandidate);
  const role = await ensureRole(store, identity.role, identity.permissions);
  // Only its own role: a node user holding another (granted by hand) would write more than its own keys.
  const user = await ensureUser(store, identity.user, [identity.role], 'revoke');
  return { allocation, created, identity, user, role };
}
