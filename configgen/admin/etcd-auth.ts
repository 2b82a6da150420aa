// The users and roles of identity.ts applied through etcd's auth API, reconciling rather
// than replaying: each step reads what is there and changes only what differs, so that
// an admin command run again (after failing half-way, or by habit) is harmless, and a
// role someone widened by hand is brought back to what identity.ts says.
import { EtcdRoleExistsError, EtcdRoleNotFoundError, EtcdUserExistsError, EtcdUserNotFoundError, type IPermission } from 'etcd3';
import { StoreRejectedError } from '../../lib/etcd/errors.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { permissionPlan, rolePlan, type KeyPermission } from './identity.js';

export type Auth = Pick<EtcdStore, 'auth'>;

/** What a reconciliation did. */
export type Change = 'created' | 'updated' | 'unchanged';

/** Whether `err` is etcd's refusal of kind `kind` (the store keeps etcd3's typed error as its cause). */
function refusedAs(err: unknown, kind: new (...args: never[]) => Error): boolean {
  return err instanceof StoreRejectedError && err.cause instanceof kind;
}

/** `request`'s answer, or undefined when etcd refuses it as `kind` (a user or role that is not there). */
async function unless<T>(kind: new (...args: never[]) => Error, request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (err) {
    if (refusedAs(err, kind)) return undefined;
    throw err;
  }
}

const fromEtcd = (p: IPermission): KeyPermission => ({ access: p.permType, key: p.key.toString('utf8'), rangeEnd: p.range_end.toString('utf8') });

/** The role with exactly `permissions`. */
export async function ensureRole(store: Auth, role: string, permissions: readonly KeyPermission[]): Promise<Change> {
  const found = await unless(EtcdRoleNotFoundError, store.auth('role get', (a, o) => a.roleGet({ role }, o)));
  if (!found) {
    // Another admin command may create it at the same moment: either way it exists now.
    await unless(EtcdRoleExistsError, store.auth('role add', (a, o) => a.roleAdd({ name: role }, o)));
  }
  const plan = permissionPlan((found?.perm ?? []).map(fromEtcd), permissions);
  for (const p of plan.revoke) {
    await store.auth('role revoke permission', (a, o) =>
      a.roleRevokePermission({ role, key: Buffer.from(p.key), range_end: Buffer.from(p.rangeEnd) }, o));
  }
  for (const p of plan.grant) {
    await store.auth('role grant permission', (a, o) =>
      a.roleGrantPermission({ name: role, perm: { permType: p.access, key: Buffer.from(p.key), range_end: Buffer.from(p.rangeEnd) } }, o));
  }
  return !found ? 'created' : plan.revoke.length + plan.grant.length > 0 ? 'updated' : 'unchanged';
}

/**
 * The user, without a password (it authenticates by the CN of its client certificate),
 * holding `roles`; with others 'revoke', holding no other role.
 */
export async function ensureUser(store: Auth, user: string, roles: readonly string[], others: 'revoke' | 'keep'): Promise<Change> {
  const found = await unless(EtcdUserNotFoundError, store.auth('user get', (a, o) => a.userGet({ name: user }, o)));
  if (!found) {
    await unless(EtcdUserExistsError, store.auth('user add', (a, o) => a.userAdd({ name: user, options: { no_password: true } }, o)));
  }
  const plan = rolePlan(found?.roles ?? [], roles, others);
  for (const role of plan.revoke) await store.auth('user revoke role', (a, o) => a.userRevokeRole({ name: user, role }, o));
  for (const role of plan.grant) await store.auth('user grant role', (a, o) => a.userGrantRole({ user, role }, o));
  return !found ? 'created' : plan.revoke.length + plan.grant.length > 0 ? 'updated' : 'unchanged';
}

/** Deletes the user; false when there was none. */
export async function deleteUser(store: Auth, user: string): Promise<boolean> {
  return (await unless(EtcdUserNotFoundError, store.auth('user delete', (a, o) => a.userDelete({ name: user }, o)))) !== undefined;
}

/** Deletes the role; false when there was none. */
export async function deleteRole(store: Auth, role: string): Promise<boolean> {
  return (await unless(EtcdRoleNotFoundError, store.auth('role delete', (a, o) => a.roleDelete({ role }, o)))) !== undefined;
}

/** Turns authentication on (etcd answers success when it already is). */
export async function enableAuth(store: Auth): Promise<void> {
  await store.auth('auth enable', (a, o) => a.authEnable(o));
}
