// Which credential the agent signs a new allocation with, and when it moves to a newer one.
import { describe, expect, it } from 'vitest';
import { pickCredential, rotationStep, turnLogin } from '../../../../node-agent/relay/turn-login.js';
import { issueTurnCredential } from '../../../../lib/turn-credential.js';

const t0 = new Date('2026-11-29T12:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const old = issueTurnCredential('s', 'n', t0, 600);
const newer = issueTurnCredential('s', 'n', at(300), 600);

describe('pickCredential', () => {
  it('takes the one lasting longest, and none that expires within 10 s', () => {
    expect(pickCredential([old, newer, undefined], at(310))).toBe(newer);
    expect(pickCredential([old], at(589))).toBe(old);
    expect(pickCredential([old], at(590))).toBeUndefined();
    expect(pickCredential([], t0)).toBeUndefined();
  });
});

describe('turnLogin', () => {
  it('signs with the static user, reading the password file only then, or with the issued credential', () => {
    expect(turnLogin({ issued: false, username: 'u', passwordFile: '/p' }, () => 'from-file', undefined)).toEqual({ username: 'u', password: 'from-file' });
    expect(turnLogin({ issued: false, username: 'u', password: 'inline' }, () => { throw new Error('read'); }, undefined)).toEqual({ username: 'u', password: 'inline' });
    expect(turnLogin({ issued: true }, () => { throw new Error('read'); }, old)).toEqual({ username: old.username, password: old.password, credential: old });
    expect(turnLogin({ issued: true }, () => 'p', undefined)).toBeUndefined();
  });
});

describe('rotationStep', () => {
  it('rotates at three quarters of the life in use, once a newer credential is there', () => {
    expect(rotationStep(old, newer, at(449))).toBe('not yet');
    expect(rotationStep(old, newer, at(450))).toBe('rotate');
    expect(rotationStep(old, old, at(450))).toBe('no newer credential');
    expect(rotationStep(old, undefined, at(500))).toBe('no newer credential');
  });
});
