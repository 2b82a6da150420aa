// Deterministic names and addresses, so DEL, CHECK and GC find what ADD made
// without keeping any state of their own.
import { parseAddress } from '../lib/cidr.js';
import { fnv1a64 } from '../lib/fnv.js';

/** Host end of the pod's veth: "wrn" + 12 hex digits of FNV-1a(containerId/ifname), 15 characters. */
export function hostVethName(containerId: string, ifname: string): string {
  return 'wrn' + fnv1a64(`${containerId}/${ifname}`).toString(16).padStart(16, '0').slice(0, 12);
}

/**
 * The pod interface's MAC, derived from its address as ovn-kubernetes does (0a:58 +
 * the last four bytes): unique wherever addresses are, stable across restarts, and
 * known before the link exists, so the result needs no extra read.
 */
export function podMac(address: string): string {
  const bytes = parseAddress(address).toByteArray().slice(-4);
  return ['0a', '58', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
