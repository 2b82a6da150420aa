// Pure: the smallest set of changes that turns the actual device into the desired one.
// Everything not mentioned is left as it is; in particular a peer's endpoint is only
// set when the desired state names one that differs, because WireGuard learns a peer's
// current address from its packets (roaming, NAT rebinding) and that knowledge is
// better than "no opinion".
import type { ActualOverlay, ActualRoute } from './actual.js';
import { canonicalEndpoint } from './endpoint.js';
import { compare, type DesiredOverlay, type DesiredPeer, type OverlayRoute } from './plan.js';

/** One `peer` clause of `wg set`: only the fields that change. */
export interface PeerChange {
  publicKey: string;
  /** The complete new list (wg set replaces the list). */
  allowedIps?: string[];
  endpoint?: string;
  keepaliveSeconds?: number;
}

export interface OverlayChanges {
  setPrivateKey: boolean;
  listenPort?: number;
  mtu?: number;
  bringUp: boolean;
  removeAddresses: string[];
  addAddresses: string[];
  removePeers: string[];
  /** New peers and changed ones. */
  setPeers: PeerChange[];
  removeRoutes: ActualRoute[];
  addRoutes: OverlayRoute[];
}

export function diffOverlay(desired: DesiredOverlay, actual: ActualOverlay, ifname: string): OverlayChanges {
  const wanted = new Map(desired.peers.map((p) => [p.publicKey, p]));
  const present = new Map(actual.wg.peers.map((p) => [p.publicKey, p]));
  const setPeers: PeerChange[] = [];
  const renewed: string[] = [];
  for (const want of desired.peers) {
    const have = present.get(want.publicKey);
    // A peer's first endpoint: WireGuard counts a handshake it could not send (traffic
    // before any endpoint) as sent and waits REKEY_TIMEOUT (5 s) before the next one.
    // The peer is removed and added afresh in the same `wg set`, so the first packet
    // after the endpoint is known starts a handshake at once (measured: 5.2 s to 1.x s).
    if (have && have.endpoint === undefined && want.endpoint !== undefined) {
      renewed.push(want.publicKey);
      setPeers.push(newPeer(want));
      continue;
    }
    const change = have ? peerChange(want, have) : newPeer(want);
    if (change) setPeers.push(change);
  }
  const routeKey = (r: { dst: string; kind: string; dev?: string }) => `${r.kind} ${r.dst} ${r.kind === 'interface' ? (r.dev ?? ifname) : ''}`;
  const desiredRoutes = new Set(desired.routes.map(routeKey));
  const actualRoutes = new Set(actual.routes.map(routeKey));
  return {
    setPrivateKey: actual.wg.iface.publicKey !== desired.publicKey,
    ...(actual.wg.iface.listenPort !== desired.listenPort ? { listenPort: desired.listenPort } : {}),
    ...(actual.mtu !== desired.mtu ? { mtu: desired.mtu } : {}),
    bringUp: !actual.up,
    removeAddresses: actual.addresses.filter((a) => a !== desired.address),
    addAddresses: actual.addresses.includes(desired.address) ? [] : [desired.address],
    removePeers: [...[...present.keys()].filter((k) => !wanted.has(k)), ...renewed].sort(compare),
    setPeers,
    removeRoutes: actual.routes.filter((r) => !desiredRoutes.has(routeKey(r))),
    addRoutes: desired.routes.filter((r) => !actualRoutes.has(routeKey(r))),
  };
}

export function isEmpty(c: OverlayChanges): boolean {
  return !c.setPrivateKey && c.listenPort === undefined && c.mtu === undefined && !c.bringUp
    && [c.removeAddresses, c.addAddresses, c.removePeers, c.setPeers, c.removeRoutes, c.addRoutes].every((l) => l.length === 0);
}

function newPeer(want: DesiredPeer): PeerChange {
  return {
    publicKey: want.publicKey,
    allowedIps: want.allowedIps,
    ...(want.endpoint !== undefined ? { endpoint: want.endpoint } : {}),
    ...(want.keepaliveSeconds !== 0 ? { keepaliveSeconds: want.keepaliveSeconds } : {}),
  };
}

function peerChange(want: DesiredPeer, have: ActualOverlay['wg']['peers'][number]): PeerChange | undefined {
  const change: PeerChange = { publicKey: want.publicKey };
  if (!sameSet(want.allowedIps, have.allowedIps)) change.allowedIps = want.allowedIps;
  const haveEndpoint = have.endpoint === undefined ? undefined : (canonicalEndpoint(have.endpoint) ?? have.endpoint);
  if (want.endpoint !== undefined && want.endpoint !== haveEndpoint) change.endpoint = want.endpoint;
  if (want.keepaliveSeconds !== have.keepaliveSeconds) change.keepaliveSeconds = want.keepaliveSeconds;
  return Object.keys(change).length > 1 ? change : undefined;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(b);
  return a.every((x) => s.has(x));
}
