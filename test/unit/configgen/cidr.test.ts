import { describe, expect, it } from 'vitest';
import { addressAt, addressToBigInt, bigIntToAddress, parseCidr, subnetAt, subnetIndexOf } from '../../../lib/cidr.js';

describe('CIDR arithmetic', () => {
  it('round-trips addresses through bigints', () => {
    expect(addressToBigInt('10.0.0.1')).toBe(0x0a000001n);
    expect(bigIntToAddress(0x0a000001n, 4)).toBe('10.0.0.1');
    expect(bigIntToAddress(addressToBigInt('fd00::1:2'), 6)).toBe('fd00::1:2');
  });

  it('counts addresses from the start or, when negative, from the end', () => {
    const c = parseCidr('10.244.3.0/24');
    expect(addressAt(c, 1)).toBe('10.244.3.1');
    expect(addressAt(c, -1)).toBe('10.244.3.255');
    expect(() => addressAt(c, 256)).toThrow(/outside/);
  });

  it('finds the nth subnet and back', () => {
    const pool = parseCidr('10.244.0.0/16');
    expect(subnetAt(pool, 24, 17).network).toBe('10.244.17.0');
    expect(subnetAt(pool, 28, 17).network).toBe('10.244.1.16');
    expect(subnetIndexOf(pool, 28, '10.244.1.20')).toBe(17);
    expect(subnetIndexOf(pool, 24, '10.245.0.1')).toBeUndefined();
    expect(() => subnetAt(pool, 24, 256)).toThrow(/outside/);
  });
});
