// This node's own addresses where a peer on the same network could reach WireGuard
// directly: every global IPv4 address outside the overlay's and the pods' ranges.
import { cidrContains, parseCidr } from '../lib/cidr.js';
import type { IpAddrLink } from '../lib/ip.js';
import type { Candidate } from './signal/record.js';

export function localCandidates(links: readonly IpAddrLink[], o: { listenPort: number; exclude: readonly string[]; skipInterfaces: readonly string[] }): Candidate[] {
  const excluded = o.exclude.map((c) => parseCidr(c));
  const out: Candidate[] = [];
  for (const link of links) {
    if (o.skipInterfaces.includes(link.ifname) || (link.flags ?? []).includes('LOOPBACK')) continue;
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || a.scope !== 'global') continue;
      if (excluded.some((c) => cidrContains(c, a.local))) continue;
      out.push({ kind: 'local', address: a.local, port: o.listenPort });
    }
  }
  return out;
}
