// `warren-configgen admin remove-node NAME`: the node's credential goes first, so that
// its agent, should it still run, cannot put its record back; then its allocation, its
// record, its credentials and, if it holds it, the gateway key. Those two stay otherwise: etcd lets any
// client keep any lease alive, so a departed node's keys need not ever expire.
import { del, delPrefix, valueIs } from '../../lib/etcd/ops.js';
import type { KeyLayout } from '../../lib/etcd/keys.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import type { NodeAllocation } from '../pool.js';
import { release } from '../release.js';
import { deleteRole, deleteUser } from './etcd-auth.js';
import { nodeRoleName } from './identity.js';

export interface RemoveNodeResult {
  released: NodeAllocation | undefined;
  userDeleted: boolean;
  roleDeleted: boolean;
  gatewayDropped: boolean;
}

export async function adminRemoveNode(store: EtcdStore, keys: KeyLayout, node: string): Promise<RemoveNodeResult> {
  const userDeleted = await deleteUser(store, node);
  const roleDeleted = await deleteRole(store, nodeRoleName(node));
  // release() drops the agent record with the allocation; a node without one may still have a record.
  const released = await release(store, keys, node);
  const credentials = delPrefix(keys.credentialsOf(node));
  const r = await store.txn({ compare: [valueIs(keys.gateway, node)], success: [del(keys.agent(node)), credentials, del(keys.gateway)], failure: [del(keys.agent(node)), credentials] });
  return { released, userDeleted, roleDeleted, gatewayDropped: r.succeeded };
}
