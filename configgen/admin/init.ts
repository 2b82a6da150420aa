// `warren-configgen admin init`: the pool, etcd's root user and the TURN credential
// issuer's, then authentication on. In that order because etcd refuses `auth enable` without a root user, and once it is on
// only root may write the pool. Each step first looks at what is there, so that a second
// run (or one after a failure half-way) changes nothing that is already right.
import { etcdAuthEnabled } from '../../lib/etcd/auth-status.js';
import type { KeyLayout } from '../../lib/etcd/keys.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { checkStoredPool, ensurePool } from '../pool-record.js';
import type { Pool } from '../pool.js';
import { enableAuth, ensureRole, ensureUser, type Change } from './etcd-auth.js';
import { ROOT, turnIssuerIdentity } from './identity.js';

export interface InitResult {
  poolStored: boolean;
  root: Change;
  /** The issuer's user (its role alike). */
  issuer: Change;
  authEnabled: boolean;
}

export async function adminInit(store: EtcdStore, keys: KeyLayout, pool: Pool): Promise<InitResult> {
  const stored = await ensurePool(store, keys, pool);
  if (stored !== undefined) checkStoredPool(keys, pool, stored);
  // Root keeps any other role someone gave it: it may do everything anyway.
  const root = await ensureUser(store, ROOT, [ROOT], 'keep');
  const issuer = turnIssuerIdentity(keys);
  const issuerRole = await ensureRole(store, issuer.role, issuer.permissions);
  const issuerUser = await ensureUser(store, issuer.user, [issuer.role], 'revoke');
  const wasOn = await etcdAuthEnabled(store);
  if (!wasOn) await enableAuth(store);
  const issuerChange: Change = issuerUser === 'created' || issuerRole === 'created' ? 'created'
    : issuerUser === 'updated' || issuerRole === 'updated' ? 'updated' : 'unchanged';
  return { poolStored: stored === undefined, root, issuer: issuerChange, authEnabled: !wasOn };
}
