// What the node signs its TURN requests with: the configured static user, or (turn.issued)
// the expiring credential the issuer wrote for this node (lib/turn-credential.ts). An
// allocation lives under the username it was made with, so with issued credentials the
// agent moves to a new allocation before that credential runs out (rotationAt). Pure.
import type { TurnSettings } from '../config.js';
import { rotationAt, type TurnCredential } from '../../lib/turn-credential.js';

export interface TurnLogin {
  username: string;
  password: string;
  /** Issued: the credential itself (its expiry bounds the allocation's life). */
  credential?: TurnCredential;
}

/** A credential this close to its expiry is not used for a new allocation: coturn would refuse its first Refresh. */
const LAST_USE_MARGIN_MS = 10_000;

/**
 * The credential a new allocation is made with: of those known (the newest from etcd, the
 * one saved with the previous agent's allocation), the one that lasts longest, if any
 * still lasts beyond the margin.
 */
export function pickCredential(known: readonly (TurnCredential | undefined)[], now: Date): TurnCredential | undefined {
  let best: TurnCredential | undefined;
  for (const c of known) {
    if (!c || c.expiresAt.getTime() - now.getTime() <= LAST_USE_MARGIN_MS) continue;
    if (!best || c.expiresAt > best.expiresAt) best = c;
  }
  return best;
}

/** The static login, or the issued one from `credential`; undefined while none is issued. */
export function turnLogin(t: Pick<TurnSettings, 'issued' | 'username' | 'password' | 'passwordFile'>, password: () => string, credential: TurnCredential | undefined): TurnLogin | undefined {
  if (!t.issued) return { username: t.username!, password: t.password ?? password() };
  return credential && { username: credential.username, password: credential.password, credential };
}

/**
 * What to do when the allocation's credential reaches its rotation time, or a new one
 * arrives: move to a new allocation once a newer credential is there; wait (and say so)
 * when none is.
 */
export function rotationStep(inUse: TurnCredential, latest: TurnCredential | undefined, now: Date): 'not yet' | 'rotate' | 'no newer credential' {
  if (now < rotationAt(inUse)) return 'not yet';
  return latest && latest.expiresAt > inUse.expiresAt ? 'rotate' : 'no newer credential';
}
