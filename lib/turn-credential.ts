// A node's TURN credential as coturn's REST API (`use-auth-secret`) checks it: the username
// is "<expiry in Unix seconds>:<node>", the password base64(HMAC-SHA1(secret, username)).
// coturn recomputes the password from its copy of the secret and refuses the username once
// its time is past, on every request, Refresh included: a credential bounds the life of
// the allocations made with it. The issuer (warren-configgen admin turn-issuer) holds the
// secret and writes each node its credential in etcd; the node never sees the secret, so a
// stolen node's credential names that node and dies at its expiry. Shared by the issuer
// and warren-agent. Pure.
import { createHmac } from 'node:crypto';

export interface TurnCredential {
  username: string;
  password: string;
  /** When it was issued and when coturn stops taking it. */
  issuedAt: Date;
  expiresAt: Date;
}

/** Shortest lifetime the issuer gives: each node needs time to move its allocation. */
export const MIN_TURN_TTL_SEC = 60;
export const DEFAULT_TURN_TTL_SEC = 12 * 3600;

export function issueTurnCredential(secret: string, node: string, now: Date, ttlSec: number): TurnCredential {
  // Whole seconds: coturn compares the username's timestamp with its clock in seconds.
  const issued = Math.floor(now.getTime() / 1000);
  const expires = issued + ttlSec;
  const username = `${expires}:${node}`;
  return {
    username,
    password: createHmac('sha1', secret).update(username).digest('base64'),
    issuedAt: new Date(issued * 1000),
    expiresAt: new Date(expires * 1000),
  };
}

/** The issuer writes a new credential once half of the current one's life is gone. */
export function renewalDue(c: TurnCredential, now: Date): boolean {
  return now.getTime() >= c.issuedAt.getTime() + lifetimeMs(c) / 2;
}

/**
 * When an agent moves its allocation to a newer credential: three quarters into the
 * credential's life, by when the issuer has written the next one (at half) and before
 * coturn refuses the Refresh (at the end).
 */
export function rotationAt(c: TurnCredential): Date {
  return new Date(c.issuedAt.getTime() + (lifetimeMs(c) * 3) / 4);
}

function lifetimeMs(c: TurnCredential): number {
  return c.expiresAt.getTime() - c.issuedAt.getTime();
}

export function formatTurnCredential(c: TurnCredential): string {
  return JSON.stringify({ username: c.username, password: c.password, issuedAt: c.issuedAt.toISOString(), expiresAt: c.expiresAt.toISOString() });
}

/** The stored credential for `node`, or why it cannot be used. */
export function parseTurnCredential(text: string, node: string): TurnCredential | { problem: string } {
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    return { problem: 'is not JSON' };
  }
  if (typeof d !== 'object' || d === null) return { problem: 'is not an object' };
  const r = d as Record<string, unknown>;
  if (typeof r.username !== 'string' || typeof r.password !== 'string' || r.password === '') return { problem: 'lacks a username or password' };
  const issuedAt = new Date(typeof r.issuedAt === 'string' ? r.issuedAt : NaN);
  const expiresAt = new Date(typeof r.expiresAt === 'string' ? r.expiresAt : NaN);
  if (Number.isNaN(issuedAt.getTime()) || Number.isNaN(expiresAt.getTime()) || expiresAt <= issuedAt) {
    return { problem: 'lacks a valid issuedAt before expiresAt' };
  }
  const [expiry, name] = r.username.split(':');
  if (name !== node) return { problem: `is for ${JSON.stringify(name ?? r.username)}, not ${JSON.stringify(node)}` };
  if (Number(expiry) * 1000 !== expiresAt.getTime()) return { problem: 'names another expiry in its username than expiresAt' };
  return { username: r.username, password: r.password, issuedAt, expiresAt };
}
