import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../configgen/errors.js';
import { allocationAt, carvePool, isConsistent, podRange } from '../../../configgen/pool.js';

const params = { podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' };

function refusal(p: Partial<typeof params>): string {
  try {
    carvePool({ ...params, ...p });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitStatus).toBe(2);
    return (err as Error).message;
  }
  throw new Error('expected carvePool to refuse');
}

describe('carvePool', () => {
  it('splits the pod CIDR into 2^nodeBits node subnets', () => {
    const pool = carvePool(params);
    expect(pool).toMatchObject({ nodePrefix: 24, subnets: 256, hostAddresses: 256, capacity: 256 });
    expect(allocationAt(pool, 'n', 3)).toEqual({ node: 'n', index: 3, podSubnet: '10.244.3.0/24', gateway: '10.244.3.1', hostAddress: '10.10.0.4' });
    expect(allocationAt(pool, 'n', 255)).toMatchObject({ podSubnet: '10.244.255.0/24', gateway: '10.244.255.1', hostAddress: '10.10.1.0' });
  });

  it('gives pods the second usable address to the last usable one', () => {
    expect(podRange('10.244.3.0/24')).toEqual({ subnet: '10.244.3.0/24', gateway: '10.244.3.1', rangeStart: '10.244.3.2', rangeEnd: '10.244.3.254' });
    expect(podRange('10.244.0.8/29')).toEqual({ subnet: '10.244.0.8/29', gateway: '10.244.0.9', rangeStart: '10.244.0.10', rangeEnd: '10.244.0.14' });
  });

  it('carves IPv6 pools (no broadcast address)', () => {
    const pool = carvePool({ podCIDR: 'fd00:10:244::/48', nodeBits: 16, hostCIDR: '10.10.0.0/16' });
    expect(allocationAt(pool, 'n', 0x12)).toMatchObject({ podSubnet: 'fd00:10:244:12::/64', gateway: 'fd00:10:244:12::1' });
    expect(podRange('fd00:10:244:12::/64').rangeEnd).toBe('fd00:10:244:12:ffff:ffff:ffff:ffff');
  });

  it('caps the capacity at the usable host-overlay addresses', () => {
    const pool = carvePool({ ...params, hostCIDR: '10.10.0.0/25' });
    expect(pool).toMatchObject({ subnets: 256, hostAddresses: 126, capacity: 126 });
  });

  it('canonicalizes the parameters stored in etcd', () => {
    expect(carvePool({ ...params, podCIDR: '10.244.0.0/16' }).params).toEqual(params);
  });

  it('accepts the smallest node subnet with two pod addresses (/29 leaves 5)', () => {
    expect(carvePool({ ...params, nodeBits: 13 }).nodePrefix).toBe(29);
  });

  it.each([
    ['an invalid CIDR', { podCIDR: '10.244.0.0/33' }, /podCIDR "10.244.0.0\/33" is not a CIDR/],
    ['a CIDR that is no address', { podCIDR: 'ten.244.0.0/16' }, /podCIDR "ten.244.0.0\/16" is not a CIDR/],
    ['host bits set', { podCIDR: '10.244.0.16/16' }, /podCIDR "10.244.0.16\/16" has host bits set \(the network is 10.244.0.0\/16\)/],
    ['host bits set in the host CIDR', { hostCIDR: '10.10.0.1/16' }, /hostCIDR "10.10.0.1\/16" has host bits set/],
    ['nodeBits 0', { nodeBits: 0 }, /nodeBits 0 must be at least 1/],
    ['negative nodeBits', { nodeBits: -3 }, /nodeBits -3 must be at least 1/],
    ['fractional nodeBits', { nodeBits: 2.5 }, /nodeBits 2.5 is not a whole number/],
    ['nodeBits leaving one pod address', { nodeBits: 14 }, /nodeBits 14 makes \/30 node subnets of 10.244.0.0\/16, leaving 1 pod address per node \(at least 2 needed\)/],
    ['nodeBits beyond the address', { nodeBits: 20 }, /nodeBits 20 makes \/36 node subnets .* leaving no pod addresses/],
    ['nodeBits over the maximum', { podCIDR: 'fd00::/32', nodeBits: 25 }, /nodeBits 25 must be at most 24/],
    ['a pod CIDR overlapping the host CIDR', { hostCIDR: '10.244.128.0/24' }, /podCIDR 10.244.0.0\/16 overlaps hostCIDR 10.244.128.0\/24/],
    ['a host CIDR holding the pod CIDR', { hostCIDR: '10.0.0.0/8' }, /overlaps hostCIDR 10.0.0.0\/8/],
    ['a host CIDR without usable address', { hostCIDR: '10.10.0.0/31' }, /hostCIDR "10.10.0.0\/31" has no usable host address/],
  ])('refuses %s', (_, patch, message) => {
    expect(refusal(patch as Partial<typeof params>)).toMatch(message);
  });

  it('names fields the way the user gave them', () => {
    expect(() => carvePool({ ...params, nodeBits: 0 }, (f) => (f === 'nodeBits' ? '--node-bits' : f))).toThrow('--node-bits 0 must be at least 1');
  });
});

describe('isConsistent', () => {
  const pool = carvePool(params);
  it('accepts exactly what allocationAt gives', () => {
    expect(isConsistent(pool, allocationAt(pool, 'a', 7))).toBe(true);
  });
  it.each([
    ['another subnet', { podSubnet: '10.244.8.0/24' }],
    ['another host address', { hostAddress: '10.10.0.99' }],
    ['an index out of the pool', { index: 256 }],
  ])('refuses a record with %s', (_, patch) => {
    expect(isConsistent(pool, { ...allocationAt(pool, 'a', 7), ...patch })).toBe(false);
  });
});
