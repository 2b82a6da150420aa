// Pure planning of the node's WireGuard device: from this node's place in the overlay
// and the peers it should reach, the device state it should have. No I/O here; the
// diff compares this with what `wg` and `ip` report, the executor closes the gap.
//
// Routes: one route per peer pod subnet into the interface, not one pod-CIDR route.
// A per-peer route is the switch that decides how that node is reached, so a peer can
// later go through a relay or a direct LAN path by changing its route alone, and a
// removed peer's route goes with it. The cost, traffic to a pod subnet no peer owns
// following the default route out unencrypted, is closed by an `unreachable` route
// for the whole pod CIDR when it is given: the longer per-peer and local routes win,
// anything else gets an immediate ICMP error. The host CIDR needs no route: the
// interface address carries its prefix length, so the kernel's on-link route covers it.
import { MIN_POD_MTU } from '../../lib/mtu.js';
import { cidrContains, cidrRange, cidrsOverlap, formatCidr, parseAddress, parseCidr, type Cidr, type Family } from '../../lib/cidr.js';
import { WarrenError } from '../../lib/errors.js';
import { isWireguardKey } from '../wireguard/keys.js';
import { canonicalEndpoint } from './endpoint.js';

/** Route protocol number marking the routes Warren owns; any other route is left alone. */
export const WARREN_ROUTE_PROTOCOL = 87;

/** Below IPv6's minimum link MTU, pods could not use IPv6 through the tunnel. */
export const MIN_OVERLAY_MTU = MIN_POD_MTU;

export class OverlayPlanError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OVERLAY_PLAN_INVALID', message, options);
  }
}

export interface OverlaySelf {
  publicKey: string;
  /** Handed to `wg set private-key`; the key itself never passes through here. */
  privateKeyPath: string;
  /** This node's overlay address, e.g. 10.10.0.5. */
  hostAddress: string;
  /** The overlay's host network, e.g. 10.10.0.0/16. */
  hostCidr: string;
  /** This node's pod subnet: local, never routed into the tunnel. */
  podSubnet: string;
  /** The whole cluster pod network; when given, unowned parts of it are unreachable rather than leaked. */
  podCidr?: string;
  listenPort: number;
  mtu: number;
}

export interface OverlayPeer {
  publicKey: string;
  hostAddress: string;
  podSubnet: string;
  /** "ip:port"; undefined means no opinion: an endpoint WireGuard learned stays. */
  endpoint?: string;
  /** Undefined or 0: off. */
  keepaliveSeconds?: number;
  /**
   * Address ranges reached through this peer beyond its own: the SD-EWAN overlay's, when
   * the peer is the cluster's active gateway (a failover moves them to the next one).
   */
  routedRanges?: readonly string[];
}

export interface OverlayInput {
  self: OverlaySelf;
  peers: readonly OverlayPeer[];
}

export interface DesiredPeer {
  publicKey: string;
  /** Canonical CIDRs, sorted. */
  allowedIps: string[];
  endpoint: string | undefined;
  keepaliveSeconds: number;
}

export type RouteKind = 'interface' | 'unreachable';

export interface OverlayRoute {
  dst: string;
  kind: RouteKind;
}

export interface DesiredOverlay {
  publicKey: string;
  privateKeyPath: string;
  listenPort: number;
  mtu: number;
  /** "address/prefix" on the interface. */
  address: string;
  /** Sorted by public key. */
  peers: DesiredPeer[];
  /** Sorted by destination. */
  routes: OverlayRoute[];
}

export interface RejectedPeer {
  publicKey: string;
  reason: string;
}

export interface OverlayPlan {
  desired: DesiredOverlay;
  /** Peers left out, each with why: one bad record must not cut the node off from the rest. */
  rejected: RejectedPeer[];
}

/** The WireGuard interface MTU over an underlay path of `underlayMtu` bytes. */
export function mtuFor(underlayMtu: number, family: Family): number {
  // Outer IP header (20 or 40) + UDP (8) + WireGuard header and tag (16 + 16).
  const overhead = family === 4 ? 60 : 80;
  const mtu = underlayMtu - overhead;
  if (!Number.isInteger(underlayMtu) || mtu < MIN_OVERLAY_MTU) {
    throw new OverlayPlanError(`underlay MTU ${underlayMtu} leaves ${mtu} bytes after WireGuard over IPv${family}, below ${MIN_OVERLAY_MTU}`);
  }
  return mtu;
}

export function planOverlay(input: OverlayInput): OverlayPlan {
  const self = checkSelf(input.self);
  const rejected: RejectedPeer[] = [];
  const candidates: { peer: OverlayPeer; subnet: Cidr; desired: DesiredPeer }[] = [];
  for (const peer of input.peers) {
    // The cluster's node list includes this node; it is not its own peer.
    if (peer.publicKey === self.publicKey) continue;
    const r = checkPeer(peer, self);
    if (typeof r === 'string') rejected.push({ publicKey: peer.publicKey, reason: r });
    else candidates.push({ peer, ...r });
  }
  // WireGuard moves an allowed IP silently to the last peer given it, so two peers
  // claiming one key, address or subnet cannot both be configured, and which of them
  // is right cannot be told from here: both are left out. Found by maps and one sweep
  // over the sorted subnets, not by comparing every pair: a thousand peers are a million
  // pairs on every reconcile.
  const clash = clashes(candidates.map((c) => ({ publicKey: c.peer.publicKey, hostAddress: parseAddress(c.peer.hostAddress).toString(), subnet: c.subnet })));
  const peers: DesiredPeer[] = [];
  const routes: OverlayRoute[] = [];
  candidates.forEach((c, i) => {
    const why = clash.get(i);
    if (why) return void rejected.push({ publicKey: c.peer.publicKey, reason: why });
    const ranges = routedRanges(c.peer, self, rejected);
    peers.push({ ...c.desired, allowedIps: [...c.desired.allowedIps, ...ranges].sort(compare) });
    routes.push({ dst: formatCidr(c.subnet), kind: 'interface' }, ...ranges.map((dst) => ({ dst, kind: 'interface' as const })));
  });
  peers.sort((a, b) => compare(a.publicKey, b.publicKey));
  if (self.podCidr) routes.push({ dst: formatCidr(self.podCidr), kind: 'unreachable' });
  routes.sort((a, b) => compare(a.dst, b.dst));
  return {
    desired: {
      publicKey: self.publicKey,
      privateKeyPath: self.privateKeyPath,
      listenPort: self.listenPort,
      mtu: self.mtu,
      address: `${parseAddress(self.hostAddress).toString()}/${self.hostCidr.prefix}`,
      peers,
      routes,
    },
    rejected,
  };
}

interface CheckedSelf {
  publicKey: string;
  privateKeyPath: string;
  hostAddress: string;
  hostCidr: Cidr;
  podSubnet: Cidr;
  podCidr: Cidr | undefined;
  listenPort: number;
  mtu: number;
}

// This node's own settings are not skippable like a peer: a mistake there is fatal.
function checkSelf(s: OverlaySelf): CheckedSelf {
  const fail = (why: string, cause?: unknown): never => {
    throw new OverlayPlanError(`this node's overlay settings: ${why}`, { cause });
  };
  if (!isWireguardKey(s.publicKey)) fail('publicKey is not a WireGuard key');
  if (!s.privateKeyPath) fail('privateKeyPath is empty');
  if (!Number.isInteger(s.listenPort) || s.listenPort < 1 || s.listenPort > 65535) fail(`listenPort ${s.listenPort} is not a UDP port`);
  if (!Number.isInteger(s.mtu) || s.mtu < MIN_OVERLAY_MTU || s.mtu > 65535) fail(`mtu ${s.mtu} is outside ${MIN_OVERLAY_MTU}..65535`);
  let hostCidr!: Cidr;
  let podSubnet!: Cidr;
  let podCidr: Cidr | undefined;
  try {
    hostCidr = parseCidr(s.hostCidr);
    podSubnet = parseCidr(s.podSubnet);
    podCidr = s.podCidr === undefined ? undefined : parseCidr(s.podCidr);
  } catch (err) {
    fail((err as Error).message, err);
  }
  if (!safeContains(hostCidr, s.hostAddress)) fail(`hostAddress ${s.hostAddress} is not inside hostCidr ${s.hostCidr}`);
  if (cidrsOverlap(hostCidr, podSubnet)) fail(`podSubnet ${s.podSubnet} overlaps hostCidr ${s.hostCidr}`);
  if (podCidr && !safeContains(podCidr, podSubnet.network)) fail(`podSubnet ${s.podSubnet} is not inside podCidr ${s.podCidr}`);
  return { publicKey: s.publicKey, privateKeyPath: s.privateKeyPath, hostAddress: s.hostAddress, hostCidr, podSubnet, podCidr, listenPort: s.listenPort, mtu: s.mtu };
}

/**
 * Why each clashing peer (by index) cannot be configured: it shares its public key, host
 * address or (overlapping) pod subnet with another; the first of these that applies.
 */
export function clashes(peers: readonly { publicKey: string; hostAddress: string; subnet: Cidr }[]): Map<number, string> {
  const found = new Map<number, string>();
  const mark = (i: number, why: string) => {
    if (!found.has(i)) found.set(i, `shares its ${why} with another peer`);
  };
  for (const field of ['publicKey', 'hostAddress'] as const) {
    const by = new Map<string, number[]>();
    peers.forEach((p, i) => by.set(p[field], [...(by.get(p[field]) ?? []), i]));
    for (const [value, at] of by) if (at.length > 1) for (const i of at) mark(i, field === 'publicKey' ? 'public key' : `host address ${value}`);
  }
  // Subnets are nested or apart: in order of start (wider first), each overlaps exactly the
  // still-open subnets that contain it.
  const sorted = peers.map((p, i) => ({ i, family: p.subnet.family, ...cidrRange(p.subnet) }))
    .sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end > b.end ? -1 : a.end < b.end ? 1 : 0));
  const open: typeof sorted = [];
  for (const s of sorted) {
    while (open.length && (open.at(-1)!.family !== s.family || open.at(-1)!.end < s.start)) open.pop();
    for (const o of open) {
      const pair = `pod subnet ${formatCidr(peers[o.i]!.subnet)}/${formatCidr(peers[s.i]!.subnet)}`;
      mark(o.i, pair);
      mark(s.i, pair);
    }
    open.push(s);
  }
  return found;
}

function checkPeer(p: OverlayPeer, self: CheckedSelf): { subnet: Cidr; desired: DesiredPeer } | string {
  if (!isWireguardKey(p.publicKey)) return 'public key is not a WireGuard key';
  if (!safeContains(self.hostCidr, p.hostAddress)) return `host address ${p.hostAddress} is not inside ${formatCidr(self.hostCidr)}`;
  if (parseAddress(p.hostAddress).toString() === parseAddress(self.hostAddress).toString()) return `host address ${p.hostAddress} is this node's`;
  let subnet: Cidr;
  try {
    subnet = parseCidr(p.podSubnet);
  } catch (err) {
    return (err as Error).message;
  }
  if (cidrsOverlap(subnet, self.podSubnet)) return `pod subnet ${p.podSubnet} overlaps this node's ${formatCidr(self.podSubnet)}`;
  if (cidrsOverlap(subnet, self.hostCidr)) return `pod subnet ${p.podSubnet} overlaps the host network ${formatCidr(self.hostCidr)}`;
  if (self.podCidr && !cidrContains(self.podCidr, subnet.network)) return `pod subnet ${p.podSubnet} is outside the pod network ${formatCidr(self.podCidr)}`;
  let endpoint: string | undefined;
  if (p.endpoint !== undefined) {
    endpoint = canonicalEndpoint(p.endpoint);
    if (!endpoint) return `endpoint ${JSON.stringify(p.endpoint)} is not a literal ip:port`;
  }
  const keepalive = p.keepaliveSeconds ?? 0;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) return `keepalive ${keepalive} is outside 0..65535 seconds`;
  const host = parseAddress(p.hostAddress);
  const hostRoute = `${host.toString()}/${host.kind() === 'ipv4' ? 32 : 128}`;
  return {
    subnet,
    desired: { publicKey: p.publicKey, allowedIps: [hostRoute, formatCidr(subnet)].sort(compare), endpoint, keepaliveSeconds: keepalive },
  };
}

/**
 * A peer's routed ranges that can be routed: a range overlapping this node's own networks
 * would take them away from the node, so it is left out (and said why), the peer kept.
 */
function routedRanges(p: OverlayPeer, self: CheckedSelf, rejected: RejectedPeer[]): string[] {
  const ok: string[] = [];
  for (const text of p.routedRanges ?? []) {
    let range: Cidr;
    try {
      range = parseCidr(text);
    } catch (err) {
      rejected.push({ publicKey: p.publicKey, reason: `routed range ${JSON.stringify(text)}: ${(err as Error).message}` });
      continue;
    }
    const mine = [self.hostCidr, self.podSubnet, ...(self.podCidr ? [self.podCidr] : [])].find((c) => cidrsOverlap(c, range));
    if (mine) rejected.push({ publicKey: p.publicKey, reason: `routed range ${text} overlaps this node's ${formatCidr(mine)}` });
    else ok.push(formatCidr(range));
  }
  return ok;
}

function safeContains(c: Cidr, address: string): boolean {
  try {
    return cidrContains(c, address);
  } catch {
    return false;
  }
}

// Plain code-unit order: stable across locales, and the same order the diff sorts by.
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
