// The allocation record warren-configgen writes under <prefix>/nodes/<node>: which pod
// subnet and host-overlay address the node holds. Readers other than configgen (the
// agents) trust a node's own published record for these two only where this record,
// written by the allocator and never by the node, agrees. Pure.
import { formatCidr, parseAddress, parseCidr } from './cidr.js';

export interface AllocationClaim {
  node: string;
  podSubnet: string;
  hostAddress: string;
}

/** The allocation `text` stored under `key` records for `node`, or why it is not one. */
export function parseAllocationClaim(key: string, text: string, node: string): AllocationClaim | string {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    return `etcd key ${key} does not hold JSON: ${JSON.stringify(text.slice(0, 80))}`;
  }
  if (!r || typeof r !== 'object' || Array.isArray(r)) return `etcd key ${key} does not hold an object`;
  const o = r as Record<string, unknown>;
  if (o.node !== node) return `etcd key ${key}: field node is ${JSON.stringify(o.node)}, not ${JSON.stringify(node)}`;
  let podSubnet: string;
  let hostAddress: string;
  try {
    podSubnet = formatCidr(parseCidr(String(o.podSubnet)));
  } catch {
    return `etcd key ${key}: field podSubnet ${JSON.stringify(o.podSubnet)} is not a subnet`;
  }
  try {
    if (typeof o.hostAddress !== 'string') throw new Error();
    hostAddress = parseAddress(o.hostAddress).toString();
  } catch {
    return `etcd key ${key}: field hostAddress ${JSON.stringify(o.hostAddress)} is not an address`;
  }
  return { node, podSubnet, hostAddress };
}
