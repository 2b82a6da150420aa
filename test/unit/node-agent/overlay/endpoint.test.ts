import { describe, expect, it } from 'vitest';
import { canonicalEndpoint } from '../../../../node-agent/overlay/endpoint.js';

describe('canonicalEndpoint', () => {
  it('writes addresses the way wg prints them', () => {
    expect(canonicalEndpoint('192.0.2.2:51820')).toBe('192.0.2.2:51820');
    expect(canonicalEndpoint('[2001:DB8:0:0::7]:51900')).toBe('[2001:db8::7]:51900');
    expect(canonicalEndpoint('[::ffff:192.0.2.2]:51820')).toBe('192.0.2.2:51820');
  });

  it('refuses names, missing or bad ports and bare IPv6', () => {
    for (const bad of ['node-a.example:51820', '192.0.2.2', '192.0.2.2:0', '192.0.2.2:70000', '2001:db8::7:51820', '[2001:db8::7]', '']) {
      expect(canonicalEndpoint(bad), bad).toBeUndefined();
    }
  });
});
