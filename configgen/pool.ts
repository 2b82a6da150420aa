// Carving, pure: the pod CIDR split into 2^nodeBits node subnets, and the host CIDR
// handing one host-overlay address per node. Subnet number i always pairs with host
// address number i, so one claimed index decides both and they can never disagree.
import { addressAt, addressBits, addressCount, CidrError, cidrsOverlap, formatCidr, parseCidr, subnetAt, subnetIndexOf, type Cidr } from '../lib/cidr.js';
import { ConfigError } from './errors.js';

export interface PoolParams {
  podCIDR: string;
  nodeBits: number;
  hostCIDR: string;
}

export interface Pool {
  /** Canonical text, as stored in etcd and compared between nodes. */
  params: PoolParams;
  pod: Cidr;
  host: Cidr;
  nodePrefix: number;
  /** 2^nodeBits. */
  subnets: number;
  /** Usable host-overlay addresses (network and broadcast excluded), capped at `subnets`. */
  hostAddresses: number;
  /** How many nodes fit: the smaller of the two. */
  capacity: number;
}

export interface NodeAllocation {
  node: string;
  index: number;
  podSubnet: string;
  gateway: string;
  hostAddress: string;
}

export type PoolField = keyof PoolParams;

/** Above this, a pool has more subnets (16M) than any cluster has nodes. */
export const MAX_NODE_BITS = 24;
/** The rule: every node needs room for at least two pods. */
export const MIN_PODS_PER_NODE = 2;

/** Addresses a node subnet of `size` gives pods: not the network, gateway or IPv4 broadcast. */
function podsPerSubnet(family: 4 | 6, size: bigint): bigint {
  return size - (family === 4 ? 3n : 2n);
}

function usableHosts(c: Cidr): bigint {
  const size = addressCount(c);
  return c.family === 4 ? (size >= 4n ? size - 2n : 0n) : size - 1n;
}

/** Validates and carves. `label` names a field the way the user gave it (flag, variable, file field). */
export function carvePool(params: PoolParams, label: (field: PoolField) => string = (f) => f): Pool {
  const bad = (field: PoolField, value: unknown, why: string) => new ConfigError(`${label(field)} ${JSON.stringify(value)} ${why}`);
  const cidr = (field: 'podCIDR' | 'hostCIDR'): Cidr => {
    try {
      return parseCidr(params[field]);
    } catch (err) {
      const why = err instanceof CidrError && /host bits/.test(err.message) ? err.message.replace(/^\S+ /, '') : 'is not a CIDR such as 10.244.0.0/16';
      throw bad(field, params[field], why);
    }
  };
  const pod = cidr('podCIDR');
  const host = cidr('hostCIDR');
  const { nodeBits } = params;
  if (!Number.isInteger(nodeBits)) throw bad('nodeBits', nodeBits, 'is not a whole number');
  if (nodeBits < 1) throw bad('nodeBits', nodeBits, 'must be at least 1');
  if (nodeBits > MAX_NODE_BITS) throw bad('nodeBits', nodeBits, `must be at most ${MAX_NODE_BITS} (${2 ** MAX_NODE_BITS} nodes)`);
  const nodePrefix = pod.prefix + nodeBits;
  const bits = addressBits(pod.family);
  const pods = nodePrefix > bits ? -1n : podsPerSubnet(pod.family, 1n << BigInt(bits - nodePrefix));
  if (pods < BigInt(MIN_PODS_PER_NODE)) {
    throw bad('nodeBits', nodeBits, `makes /${nodePrefix} node subnets of ${formatCidr(pod)}, leaving ${pods < 0n ? 'no' : pods} pod address${pods === 1n ? '' : 'es'} per node (at least ${MIN_PODS_PER_NODE} needed)`);
  }
  if (cidrsOverlap(pod, host)) {
    throw new ConfigError(`${label('podCIDR')} ${formatCidr(pod)} overlaps ${label('hostCIDR')} ${formatCidr(host)}: pod and host-overlay addresses must not share a range`);
  }
  const hostUsable = usableHosts(host);
  if (hostUsable < 1n) throw bad('hostCIDR', params.hostCIDR, 'has no usable host address');
  const subnets = 2 ** nodeBits;
  const hostAddresses = Number(hostUsable < BigInt(subnets) ? hostUsable : BigInt(subnets));
  return {
    params: { podCIDR: formatCidr(pod), nodeBits, hostCIDR: formatCidr(host) },
    pod,
    host,
    nodePrefix,
    subnets,
    hostAddresses,
    capacity: Math.min(subnets, hostAddresses),
  };
}

/** The subnet, gateway and host-overlay address that index `index` stands for. */
export function allocationAt(pool: Pool, node: string, index: number): NodeAllocation {
  const subnet = subnetAt(pool.pod, pool.nodePrefix, index);
  return {
    node,
    index,
    podSubnet: formatCidr(subnet),
    gateway: addressAt(subnet, 1),
    hostAddress: addressAt(pool.host, index + 1),
  };
}

/** The host-local range of a node subnet: second usable address to last usable. */
export function podRange(podSubnet: string): { subnet: string; rangeStart: string; rangeEnd: string; gateway: string } {
  const c = parseCidr(podSubnet);
  return { subnet: podSubnet, rangeStart: addressAt(c, 2), rangeEnd: addressAt(c, c.family === 4 ? -2 : -1), gateway: addressAt(c, 1) };
}

/** Whether a record read back from etcd is exactly what index `index` of this pool gives. */
export function isConsistent(pool: Pool, a: NodeAllocation): boolean {
  if (!Number.isInteger(a.index) || a.index < 0 || a.index >= pool.capacity) return false;
  const expected = allocationAt(pool, a.node, a.index);
  return expected.podSubnet === a.podSubnet && expected.gateway === a.gateway && expected.hostAddress === a.hostAddress
    && subnetIndexOf(pool.pod, pool.nodePrefix, a.gateway) === a.index;
}
