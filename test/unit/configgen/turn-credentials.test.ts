// The issuer's plan: every allocated node holds a credential not yet half spent, no departed node holds one.
import { describe, expect, it } from 'vitest';
import { credentialOwner, planCredentials } from '../../../configgen/admin/turn-credentials.js';
import { keyLayout } from '../../../lib/etcd/keys.js';
import { issueTurnCredential } from '../../../lib/turn-credential.js';

const t0 = new Date('2026-11-29T12:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);

describe('planCredentials', () => {
  it('issues to nodes without one, keeps fresh ones, and wakes when the first comes due', () => {
    const held = new Map([['a', issueTurnCredential('s', 'a', at(-100), 1000)]]);
    expect(planCredentials(['a', 'b'], held, t0, 1000)).toEqual({ issue: ['b'], remove: [], nextDueAt: at(400) });
    // a's half-life (500 s) passed: renewed.
    expect(planCredentials(['a'], held, at(400), 1000)).toEqual({ issue: ['a'], remove: [], nextDueAt: at(900) });
  });

  it('replaces an unreadable credential and one longer-lived than the TTL now allows', () => {
    const long = issueTurnCredential('s', 'b', t0, 86_400);
    expect(planCredentials(['a', 'b'], new Map([['a', undefined], ['b', long]]), t0, 3600).issue).toEqual(['a', 'b']);
  });

  it('deletes a departed node\'s credentials and wakes no one when nothing is held', () => {
    const held = new Map([['gone', issueTurnCredential('s', 'gone', t0, 600)]]);
    expect(planCredentials([], held, t0, 600)).toEqual({ issue: [], remove: ['gone'], nextDueAt: undefined });
  });
});

describe('credentialOwner', () => {
  it('finds the node of a key in the credentials range, and none elsewhere', () => {
    const keys = keyLayout('/warren');
    expect(credentialOwner(keys, keys.turnCredential('edge-7'))).toBe('edge-7');
    expect(credentialOwner(keys, '/warren-credentials/x/other')).toBe('x');
    expect(credentialOwner(keys, keys.agent('edge-7'))).toBeUndefined();
    expect(credentialOwner(keys, '/warren-credentials//turn')).toBeUndefined();
  });
});
