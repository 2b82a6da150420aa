// Who may write what once etcd authentication is on (issue 10: a node changes only what
// is its own). etcd names a client by its certificate's CN, so node N is etcd user N,
// with one role, warren-node-N: it reads the whole prefix (its peers' records, the
// allocations its watcher checks them against, the pool) and writes exactly its own
// record and, when it may be the SD-EWAN gateway, the election key; it reads its own
// credentials, beside the prefix, and no one else's. Allocations, the pool and other
// nodes' records are the admin's (user root) alone. The TURN credential issuer, a user of
// its own, reads the allocations (who is a node) and writes credentials, nothing else.
// Pure: computed here, applied by etcd-auth.ts.
import { prefixEnd, type KeyLayout } from '../../lib/etcd/keys.js';

/** etcd's administrator: the user and the role etcd requires before `auth enable`. */
export const ROOT = 'root';

/** The TURN credential issuer's user and role (configgen/admin/turn-issuer.ts): its certificate's CN. */
export const TURN_ISSUER = 'warren-turn-issuer';

/** etcd's permission types, spelled as its API (etcd3's Permission enum) spells them. */
export type Access = 'Read' | 'Write' | 'Readwrite';

/** A permission as etcd stores it: the one key `key` when rangeEnd is '', else [key, rangeEnd). */
export interface KeyPermission {
  access: Access;
  key: string;
  rangeEnd: string;
}

export interface NodeIdentity {
  user: string;
  role: string;
  permissions: KeyPermission[];
}

export function nodeRoleName(node: string): string {
  return `warren-node-${node}`;
}

export function nodeIdentity(keys: KeyLayout, node: string, gatewayCandidate: boolean): NodeIdentity {
  const everything = `${keys.prefix}/`;
  const permissions: KeyPermission[] = [
    { access: 'Read', key: everything, rangeEnd: prefixEnd(everything) },
    { access: 'Readwrite', key: keys.agent(node), rangeEnd: '' },
    { access: 'Read', key: keys.credentialsOf(node), rangeEnd: prefixEnd(keys.credentialsOf(node)) },
  ];
  if (gatewayCandidate) permissions.push({ access: 'Readwrite', key: keys.gateway, rangeEnd: '' });
  return { user: node, role: nodeRoleName(node), permissions };
}

export function turnIssuerIdentity(keys: KeyLayout): NodeIdentity {
  return {
    user: TURN_ISSUER,
    role: TURN_ISSUER,
    permissions: [
      { access: 'Read', key: keys.nodes, rangeEnd: prefixEnd(keys.nodes) },
      { access: 'Readwrite', key: keys.credentials, rangeEnd: prefixEnd(keys.credentials) },
    ],
  };
}

export interface Plan<T> {
  revoke: T[];
  grant: T[];
}

const sameRange = (a: KeyPermission, b: KeyPermission) => a.key === b.key && a.rangeEnd === b.rangeEnd;

/**
 * What brings a role's permissions from `current` to exactly `desired`. etcd keeps one
 * permission per range and a grant on a range it has replaces that range's access, so
 * only ranges no desired permission names are revoked.
 */
export function permissionPlan(current: readonly KeyPermission[], desired: readonly KeyPermission[]): Plan<KeyPermission> {
  return {
    revoke: current.filter((c) => !desired.some((d) => sameRange(c, d))),
    grant: desired.filter((d) => !current.some((c) => sameRange(c, d) && c.access === d.access)),
  };
}

/** What brings a user's roles from `current` to `desired`; `others` says whether roles outside `desired` go. */
export function rolePlan(current: readonly string[], desired: readonly string[], others: 'revoke' | 'keep'): Plan<string> {
  return {
    revoke: others === 'revoke' ? current.filter((r) => !desired.includes(r)) : [],
    grant: desired.filter((r) => !current.includes(r)),
  };
}

/** "read /warren/*; read-write /warren/agents/a": a role's permissions in the admin commands' output. */
export function describePermissions(permissions: readonly KeyPermission[]): string {
  const name = (p: KeyPermission) => (p.rangeEnd === '' ? p.key : p.rangeEnd === prefixEnd(p.key) ? `${p.key}*` : `[${p.key}, ${p.rangeEnd})`);
  const words: Record<Access, string> = { Read: 'read', Write: 'write', Readwrite: 'read-write' };
  return (['Read', 'Write', 'Readwrite'] as const)
    .map((access) => [access, permissions.filter((p) => p.access === access).map(name)] as const)
    .filter(([, names]) => names.length > 0)
    .map(([access, names]) => `${words[access]} ${names.join(', ')}`)
    .join('; ');
}

/** Why `node` cannot be a node's etcd identity (its user name), or undefined. */
export function identityProblem(node: string): string | undefined {
  if (node === ROOT) return 'is etcd\'s administrator user: a node by that name would get the admin\'s identity';
  if (node === TURN_ISSUER) return 'is the TURN credential issuer\'s user: a node by that name would get its identity';
  return undefined;
}
