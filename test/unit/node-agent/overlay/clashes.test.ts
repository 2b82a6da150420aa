// The clash check that keeps two peers claiming one key, address or subnet out of WireGuard:
// found by maps and a sweep, it must find exactly the peers a comparison of every pair finds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cidrsOverlap, parseCidr } from '../../../../lib/cidr.js';
import { clashes } from '../../../../node-agent/overlay/plan.js';

const peer = (publicKey: string, hostAddress: string, subnet: string) => ({ publicKey, hostAddress, subnet: parseCidr(subnet) });

describe('clashes', () => {
  it('names what each clashing peer shares, and leaves the others alone', () => {
    const found = clashes([
      peer('k1', '172.20.0.1', '10.244.0.0/24'),
      peer('k1', '172.20.0.2', '10.244.1.0/24'),
      peer('k3', '172.20.0.3', '10.244.2.0/23'),
      peer('k4', '172.20.0.4', '10.244.3.0/26'),
      peer('k5', '172.20.0.5', '10.244.4.0/24'),
      peer('k6', '172.20.0.5', 'fd00::/64'),
      peer('k7', '172.20.0.7', 'fd00::/64'),
      peer('k8', '172.20.0.8', '10.244.5.0/24'),
    ]);
    expect(Object.fromEntries(found)).toEqual({
      0: 'shares its public key with another peer',
      1: 'shares its public key with another peer',
      2: 'shares its pod subnet 10.244.2.0/23/10.244.3.0/26 with another peer',
      3: 'shares its pod subnet 10.244.2.0/23/10.244.3.0/26 with another peer',
      4: 'shares its host address 172.20.0.5 with another peer',
      5: 'shares its host address 172.20.0.5 with another peer',
      6: 'shares its pod subnet fd00::/64/fd00::/64 with another peer',
    });
  });

  it('finds the same peers as comparing every pair (fast-check, 300 random clusters)', () => {
    const subnet = fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 20, max: 28 }), fc.boolean())
      .map(([n, prefix, v6]) => (v6 ? `fd00:0:0:${n.toString(16)}::/${prefix + 44}` : `10.244.${n * 16}.0/${prefix}`))
      .map((text) => { const c = parseCidr(text); return `${c.network}/${c.prefix}`; });
    const peers = fc.array(fc.record({ publicKey: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), host: fc.integer({ min: 1, max: 12 }), subnet }), { maxLength: 14 });
    fc.assert(fc.property(peers, (list) => {
      const input = list.map((p) => peer(p.publicKey, `172.20.0.${p.host}`, p.subnet));
      const expected = new Set<number>();
      input.forEach((a, i) => input.forEach((b, j) => {
        if (i !== j && (a.publicKey === b.publicKey || a.hostAddress === b.hostAddress || cidrsOverlap(a.subnet, b.subnet))) expected.add(i);
      }));
      expect(new Set(clashes(input).keys())).toEqual(expected);
    }), { numRuns: 300, seed: 20261129 });
  });
});
