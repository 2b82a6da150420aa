import { describe, expect, it } from 'vitest';
import { fnv1a32, fnv1a64 } from '../../../lib/fnv.js';

// Reference values of the FNV specification (draft-eastlake-fnv, test vectors for "a" and "foobar").
describe('FNV-1a', () => {
  it('matches the published 32-bit vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });
  it('matches the published 64-bit vectors', () => {
    expect(fnv1a64('')).toBe(0xcbf29ce484222325n);
    expect(fnv1a64('a')).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64('foobar')).toBe(0x85944171f73967e8n);
  });
});
