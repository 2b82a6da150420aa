// The gateway election's decisions, with times: who campaigns, when the holder renews,
// the exact moment it must step down, and what each node reports. The executor against
// a real etcd is in test/integration/node-agent/gateway/election.test.ts.
import { describe, expect, it } from 'vitest';
import {
  decideElection, electionTiming, ElectionConfigError, gatewayKey, leaseUsable, stepDownAt, verdictOf,
  type ElectionAction, type ElectionInput,
} from '../../../../node-agent/gateway/election.js';

// The defaults: TTL 5 s, a renewal every second, a step-down 1 s before the lease can expire.
const t = electionTiming(5, 1_000, 1_000);
const mine = { id: '42', renewedAt: 10_000 };
const base: ElectionInput = { me: 'gw-a', candidate: true, holder: undefined, lease: undefined, now: 10_000 };

describe('decideElection', () => {
  const cases: { name: string; input: Partial<ElectionInput>; action: ElectionAction }[] = [
    // Nobody holds the key.
    { name: 'a candidate takes a missing key', input: {}, action: { do: 'campaign' } },
    { name: 'a candidate whose lease went stale still campaigns (with a new lease)', input: { lease: { id: '42', renewedAt: 0 } }, action: { do: 'campaign' } },
    { name: 'a member never campaigns', input: { candidate: false }, action: { do: 'follow', active: undefined } },
    // Another node holds it.
    { name: 'a candidate follows another holder', input: { holder: { node: 'gw-b', lease: '7' }, lease: mine }, action: { do: 'follow', active: 'gw-b' } },
    { name: 'a member follows the holder', input: { candidate: false, holder: { node: 'gw-b', lease: undefined } }, action: { do: 'follow', active: 'gw-b' } },
    // My name, but not under my lease: a previous incarnation's key, left to expire.
    { name: 'my name under a lease I do not hold is followed, not renewed', input: { holder: { node: 'gw-a', lease: '41' }, lease: mine }, action: { do: 'follow', active: 'gw-a' } },
    { name: 'my name with no lease of mine is followed', input: { holder: { node: 'gw-a', lease: '41' } }, action: { do: 'follow', active: 'gw-a' } },
    { name: 'a member finding its own old key follows it', input: { candidate: false, holder: { node: 'gw-a', lease: '41' } }, action: { do: 'follow', active: 'gw-a' } },
    // I hold it: renew every second, step down at TTL - margin after the last renewal sent.
    { name: 'just renewed: the next renewal in 1 s, the step-down in 4 s', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 10_000 }, action: { do: 'renew', inMs: 1_000, stepDownInMs: 4_000 } },
    { name: '0.3 s after renewing', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 10_300 }, action: { do: 'renew', inMs: 700, stepDownInMs: 3_700 } },
    { name: 'renewal due', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 11_000 }, action: { do: 'renew', inMs: 0, stepDownInMs: 3_000 } },
    { name: 'renewals failing for 2.5 s: still active, retrying now', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 12_500 }, action: { do: 'renew', inMs: 0, stepDownInMs: 1_500 } },
    { name: '1 ms before the step-down', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 13_999 }, action: { do: 'renew', inMs: 0, stepDownInMs: 1 } },
    { name: 'TTL - margin after the last renewal: step down', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 14_000 }, action: { do: 'step-down' } },
    { name: 'past the TTL: stepped down', input: { holder: { node: 'gw-a', lease: '42' }, lease: mine, now: 16_000 }, action: { do: 'step-down' } },
  ];
  it.each(cases)('$name', ({ input, action }) => {
    expect(decideElection({ ...base, ...input }, t)).toEqual(action);
  });

  it('is never active at or after TTL - margin since the last renewal, and always before it', () => {
    for (let now = 10_000; now <= 17_000; now += 50) {
      const action = decideElection({ ...base, holder: { node: 'gw-a', lease: '42' }, lease: mine, now }, t);
      expect(verdictOf(action, 'gw-a').iAmActive, `at +${now - 10_000} ms`).toBe(now - mine.renewedAt < t.ttlMs - t.marginMs);
    }
  });

  it('a successful renewal after a step-down makes the node active again (etcd still had the lease, so the key is still mine)', () => {
    const holder = { node: 'gw-a', lease: '42' };
    expect(decideElection({ ...base, holder, lease: mine, now: 14_500 }, t)).toEqual({ do: 'step-down' });
    expect(decideElection({ ...base, holder, lease: { id: '42', renewedAt: 14_400 }, now: 14_500 }, t))
      .toEqual({ do: 'renew', inMs: 900, stepDownInMs: 3_900 });
  });
});

describe('verdictOf', () => {
  it.each([
    { action: { do: 'renew', inMs: 0, stepDownInMs: 1 } as const, verdict: { active: 'gw-a', iAmActive: true } },
    { action: { do: 'follow', active: 'gw-b' } as const, verdict: { active: 'gw-b', iAmActive: false } },
    { action: { do: 'follow', active: undefined } as const, verdict: { active: undefined, iAmActive: false } },
    { action: { do: 'campaign' } as const, verdict: { active: undefined, iAmActive: false } },
    // A node stepping down cannot vouch for itself, and does not know its successor yet.
    { action: { do: 'step-down' } as const, verdict: { active: undefined, iAmActive: false } },
  ])('$action.do -> $verdict', ({ action, verdict }) => {
    expect(verdictOf(action, 'gw-a')).toEqual(verdict);
  });
});

describe('leaseUsable and stepDownAt', () => {
  it('a campaign reuses a lease only until a holder under it would have to step down', () => {
    expect(stepDownAt(mine, t)).toBe(14_000);
    expect(leaseUsable(mine, 13_999, t)).toBe(true);
    expect(leaseUsable(mine, 14_000, t)).toBe(false);
    expect(leaseUsable(undefined, 0, t)).toBe(false);
  });
});

describe('electionTiming', () => {
  it('accepts the defaults and refuses timings that leave no room for a second renewal', () => {
    expect(electionTiming(5, 1_000, 1_000)).toEqual({ ttlMs: 5_000, renewEveryMs: 1_000, marginMs: 1_000 });
    expect(() => electionTiming(5, 2_000, 1_500)).toThrow(ElectionConfigError);
    expect(() => electionTiming(2, 1_000, 500)).toThrow(/fewer than two renewals/);
    expect(() => electionTiming(1, 100, 0)).toThrow(/at least 2/);
    expect(() => electionTiming(5.5, 1_000, 1_000)).toThrow(/whole number/);
    expect(() => electionTiming(5, 0, 1_000)).toThrow(/positive/);
  });
});

describe('gatewayKey', () => {
  it('lives under the etcd prefix, a trailing slash dropped', () => {
    expect(gatewayKey('/warren')).toBe('/warren/gateway/active');
    expect(gatewayKey('/warren/')).toBe('/warren/gateway/active');
    expect(() => gatewayKey('warren')).toThrow(/must start with/);
  });
});
