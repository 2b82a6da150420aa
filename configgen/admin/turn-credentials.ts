// Which nodes get a new TURN credential, and whose go: every allocated node holds one that
// is not yet half spent, and no departed node holds any. Pure.
import type { KeyLayout } from '../../lib/etcd/keys.js';
import { renewalDue, type TurnCredential } from '../../lib/turn-credential.js';

export interface CredentialPlan {
  /** Nodes to write a new credential for. */
  issue: string[];
  /** Departed nodes whose credentials go. */
  remove: string[];
  /** When the next credential comes due for renewal, if any is held. */
  nextDueAt: Date | undefined;
}

/**
 * `held`: each node's stored credential, undefined where what is stored cannot be used.
 * A credential whose life is longer than `ttlSec` (the issuer was restarted with a shorter
 * one) is replaced at once: the TTL is the promise of how long a stolen one lasts.
 */
export function planCredentials(nodes: readonly string[], held: ReadonlyMap<string, TurnCredential | undefined>, now: Date, ttlSec: number): CredentialPlan {
  const allocated = new Set(nodes);
  const issue: string[] = [];
  let nextDueAt: Date | undefined;
  for (const node of [...allocated].sort()) {
    const c = held.get(node);
    const tooLong = c !== undefined && c.expiresAt.getTime() - c.issuedAt.getTime() > ttlSec * 1000;
    if (c === undefined || tooLong || renewalDue(c, now)) {
      issue.push(node);
      continue;
    }
    const due = new Date(c.issuedAt.getTime() + (c.expiresAt.getTime() - c.issuedAt.getTime()) / 2);
    if (!nextDueAt || due < nextDueAt) nextDueAt = due;
  }
  if (issue.length > 0) {
    const fresh = new Date(now.getTime() + (ttlSec * 1000) / 2);
    if (!nextDueAt || fresh < nextDueAt) nextDueAt = fresh;
  }
  const remove = [...held.keys()].filter((n) => !allocated.has(n)).sort();
  return { issue, remove, nextDueAt };
}

/** The node a key under the credentials range belongs to ("<prefix>-credentials/<node>/..."). */
export function credentialOwner(keys: KeyLayout, key: string): string | undefined {
  if (!key.startsWith(keys.credentials)) return undefined;
  const node = key.slice(keys.credentials.length).split('/')[0];
  return node || undefined;
}
