// Pure: what of the node's network its peers and its NAT see, and whether that changed.
// The watcher (watcher.ts) re-reads `ip -json address` and `ip -json route` whenever
// netlink says something changed, and asks here whether the underlay moved. iproute2 6.1
// (Debian 12) ignores -json for `ip monitor` and prints human text: the monitor's output
// is only a wake-up, never parsed; the decision is made on the JSON the reads return.
//
// The underlay is the node's global IPv4 addresses outside the overlay's ranges (where
// peers and STUN see the node come from: the agent's candidates are IPv4, see
// local-candidates.ts) with whether their link carries traffic, and the IPv4 default
// routes (which gateway, hence which NAT, the node's packets leave through). Left out,
// by construction: the agent's own WireGuard interface and every route through it (the
// overlay's routes), the pod side (OVS's bridge port holds the pods' gateway address,
// inside the pod CIDR; pods' host veths and OVS ports carry no address), link-local and
// loopback addresses. A pod coming or going wakes the watcher and changes nothing here.
import { cidrContains, parseCidr } from '../../lib/cidr.js';
import type { IpAddrLink } from '../../lib/ip.js';

/** A default route as `ip -json route show default` prints it. */
export interface IpDefaultRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
}

/** The underlay as sorted lines, one per address ("eth0 10.1.0.2/24 up") and per default route ("default via 10.1.0.1 dev eth0 metric 0"). */
export interface UnderlayView {
  addresses: string[];
  routes: string[];
}

export interface UnderlayScope {
  /** Interfaces that are not underlay: the agent's WireGuard interface. */
  skipInterfaces: readonly string[];
  /** The overlay's ranges (host CIDR, pod CIDR): their addresses are not underlay. */
  exclude: readonly string[];
}

export function underlayView(links: readonly IpAddrLink[], routes: readonly IpDefaultRoute[], scope: UnderlayScope): UnderlayView {
  const excluded = scope.exclude.map((c) => parseCidr(c));
  const addresses: string[] = [];
  for (const link of links) {
    if (scope.skipInterfaces.includes(link.ifname) || (link.flags ?? []).includes('LOOPBACK')) continue;
    // An address on a link without carrier carries nothing: a cable pulled is a change.
    const up = (link.flags ?? []).includes('UP') && (link.flags ?? []).includes('LOWER_UP') ? 'up' : 'down';
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || a.scope !== 'global') continue;
      if (excluded.some((c) => cidrContains(c, a.local))) continue;
      addresses.push(`${link.ifname} ${a.local}/${a.prefixlen} ${up}`);
    }
  }
  const defaults = routes
    .filter((r) => r.dst === 'default' && !(r.dev !== undefined && scope.skipInterfaces.includes(r.dev)))
    .map((r) => `default${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''} metric ${r.metric ?? 0}`);
  return { addresses: [...new Set(addresses)].sort(), routes: [...new Set(defaults)].sort() };
}

/** What appeared and what went between two views; undefined when the underlay is the same. */
export interface UnderlayChange {
  added: string[];
  removed: string[];
}

export function underlayChange(before: UnderlayView, after: UnderlayView): UnderlayChange | undefined {
  const was = new Set([...before.addresses, ...before.routes]);
  const is = new Set([...after.addresses, ...after.routes]);
  const added = [...is].filter((l) => !was.has(l));
  const removed = [...was].filter((l) => !is.has(l));
  return added.length || removed.length ? { added, removed } : undefined;
}
