// Whether etcd checks who writes what. Without authentication every client may rewrite
// every node's record, its allocation and the pool: the programs say so, loudly, once
// they reach etcd (the embedded demo runs that way; a cluster should not).
import { EtcdUserNotFoundError, GRPCNotImplementedError } from 'etcd3';
import { StorePermissionError, StoreRejectedError } from './errors.js';
import type { EtcdStore } from './store.js';

/**
 * True when etcd's authentication is on. Costs one request on etcd 3.5 and later (AuthStatus),
 * two or three before (3.4 has no AuthStatus): listing users is refused to every credential
 * but root's when authentication is on, and for root (or with authentication off) an anonymous
 * authentication attempt tells the two apart without any permission. That attempt is
 * logged by etcd as a failed authentication, which is why it comes last: nodes never
 * reach it, only an admin on etcd 3.4. Throws the store's errors (unreachable, refused).
 */
export async function etcdAuthEnabled(store: Pick<EtcdStore, 'auth'>): Promise<boolean> {
  try {
    return (await store.auth('auth status', (auth, options) => auth.authStatus(options))).enabled;
  } catch (err) {
    if (err instanceof StorePermissionError) return true;
    if (!(err instanceof StoreRejectedError && err.cause instanceof GRPCNotImplementedError)) throw err;
  }
  try {
    await store.auth('user list', (auth, options) => auth.userList(options));
  } catch (err) {
    // A credential whose CN names no user is refused as "user name not found".
    if (err instanceof StorePermissionError || (err instanceof StoreRejectedError && err.cause instanceof EtcdUserNotFoundError)) return true;
    throw err;
  }
  try {
    await store.auth('authenticate', (auth, options) => auth.authenticate({ name: '', password: '' }, options));
    return true;
  } catch (err) {
    if (!(err instanceof StoreRejectedError)) throw err;
    return !/authentication is not enabled/.test(err.message);
  }
}

/** What every program warns of when etcdAuthEnabled says no (README, Security); each adds its own level. */
export function authOffWarning(endpoints: readonly string[]): string {
  return `etcd authentication is off: every client of ${endpoints.join(',')} can rewrite every node's record ` +
    'and allocation and the pool; see README, Security';
}
