// The contract between configgen, which writes <prefix>/nodes/<node>, and the agents,
// which check every node's own record against it.
import { describe, expect, it } from 'vitest';
import { parseAllocationClaim } from '../../../lib/allocation-record.js';
import { serializeAllocation } from '../../../configgen/allocate.js';
import { allocationAt, carvePool } from '../../../configgen/pool.js';

describe('parseAllocationClaim', () => {
  it('reads what configgen writes', () => {
    const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    const a = allocationAt(pool, 'edge-7', 7);
    expect(parseAllocationClaim('/warren/nodes/edge-7', serializeAllocation(a), 'edge-7')).toEqual({ node: 'edge-7', podSubnet: a.podSubnet, hostAddress: a.hostAddress });
  });

  it('says why a value is not an allocation of the node its key names', () => {
    const key = '/warren/nodes/n';
    expect(parseAllocationClaim(key, 'nope', 'n')).toBe('etcd key /warren/nodes/n does not hold JSON: "nope"');
    expect(parseAllocationClaim(key, '[]', 'n')).toBe('etcd key /warren/nodes/n does not hold an object');
    expect(parseAllocationClaim(key, '{"node":"m","podSubnet":"10.244.1.0/24","hostAddress":"10.10.0.2"}', 'n')).toBe('etcd key /warren/nodes/n: field node is "m", not "n"');
    expect(parseAllocationClaim(key, '{"node":"n","podSubnet":"10.244.1.7/24","hostAddress":"10.10.0.2"}', 'n')).toBe('etcd key /warren/nodes/n: field podSubnet "10.244.1.7/24" is not a subnet');
    expect(parseAllocationClaim(key, '{"node":"n","podSubnet":"10.244.1.0/24","hostAddress":7}', 'n')).toBe('etcd key /warren/nodes/n: field hostAddress 7 is not an address');
  });
});
