// coturn's REST API credential as the issuer writes it and the agent reads it.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatTurnCredential, issueTurnCredential, parseTurnCredential, renewalDue, rotationAt } from '../../../lib/turn-credential.js';

const now = new Date('2026-11-29T12:00:00.700Z');

describe('issueTurnCredential', () => {
  it('names the expiry and the node in the username and signs it as coturn does: base64(HMAC-SHA1(secret, username))', () => {
    const c = issueTurnCredential('s3cret', 'edge-7', now, 3600);
    const expiry = Math.floor(now.getTime() / 1000) + 3600;
    expect(c.username).toBe(`${expiry}:edge-7`);
    expect(c.password).toBe(createHmac('sha1', 's3cret').update(`${expiry}:edge-7`).digest('base64'));
    expect(c.expiresAt.getTime() - c.issuedAt.getTime()).toBe(3_600_000);
    expect(issueTurnCredential('other', 'edge-7', now, 3600).password).not.toBe(c.password);
  });

  it('is renewed at half its life and rotated by the agent at three quarters', () => {
    const c = issueTurnCredential('s', 'n', now, 3600);
    expect(renewalDue(c, new Date(c.issuedAt.getTime() + 1_799_999))).toBe(false);
    expect(renewalDue(c, new Date(c.issuedAt.getTime() + 1_800_000))).toBe(true);
    expect(rotationAt(c).getTime() - c.issuedAt.getTime()).toBe(2_700_000);
  });
});

describe('parseTurnCredential', () => {
  const c = issueTurnCredential('s', 'edge-7', now, 600);

  it('reads back what the issuer writes', () => {
    expect(parseTurnCredential(formatTurnCredential(c), 'edge-7')).toEqual(c);
  });

  it('refuses another node\'s credential and anything malformed, saying why', () => {
    const doc = JSON.parse(formatTurnCredential(c)) as Record<string, unknown>;
    const cases: [string, RegExp][] = [
      ['nope', /not JSON/],
      ['7', /not an object/],
      [JSON.stringify({ ...doc, password: '' }), /lacks a username or password/],
      [JSON.stringify({ ...doc, expiresAt: doc.issuedAt }), /issuedAt before expiresAt/],
      [JSON.stringify({ ...doc, expiresAt: 'soon' }), /issuedAt before expiresAt/],
      [JSON.stringify({ ...doc, expiresAt: new Date(c.expiresAt.getTime() + 1000).toISOString() }), /another expiry/],
    ];
    for (const [text, why] of cases) expect(parseTurnCredential(text, 'edge-7'), text).toEqual({ problem: expect.stringMatching(why) });
    expect(parseTurnCredential(formatTurnCredential(c), 'edge-8')).toEqual({ problem: 'is for "edge-7", not "edge-8"' });
  });
});
