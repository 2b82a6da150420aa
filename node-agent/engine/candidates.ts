// Pure: what path.ts needs of a peer, from the record the peer published; which of the
// peer's answered endpoints WireGuard should use, and what kind of endpoint it is.
import ipaddr from 'ipaddr.js';
import { formatEndpoint, type Endpoint } from '../nat/stun-address.js';
import type { NodeRecord } from '../signal/record.js';
import type { CheckSuccess } from './checks.js';
import { DIRECT_LOST_MS } from './knobs.js';
import { RELAY_PART, type PeerCandidates } from './path.js';

/**
 * direct: the peer's local and reflexive candidates, in the order published, without
 * duplicates (a public node's reflexive address is its local one). A reflexive candidate
 * of a peer whose NAT maps per destination ('endpoint-dependent') is left out: its port
 * is the one the STUN server saw, never the one our packets would reach. Checks from
 * that peer still find us, and their triggered answer finds its real port.
 * relay: its TURN relay address, if it published one.
 * fingerprint: changes exactly when either changes, so a new round starts.
 */
export function peerCandidates(record: Pick<NodeRecord, 'candidates' | 'nat'>): PeerCandidates {
  const seen = new Set<string>();
  const direct: Endpoint[] = [];
  const local: string[] = [];
  let relay: Endpoint | undefined;
  for (const c of record.candidates) {
    const endpoint = { address: c.address, port: c.port };
    if (c.kind === 'relay') {
      relay ??= endpoint;
      continue;
    }
    if (c.kind === 'reflexive' && record.nat.mapping === 'endpoint-dependent') continue;
    const key = formatEndpoint(endpoint);
    if (seen.has(key)) continue;
    seen.add(key);
    direct.push(endpoint);
    if (c.kind === 'local') local.push(key);
  }
  const fingerprint = `${JSON.stringify(direct.map(formatEndpoint))}${RELAY_PART}${relay ? formatEndpoint(relay) : ''}`;
  return { fingerprint, direct, local, ...(relay ? { relay } : {}) };
}

/**
 * What a direct endpoint of the peer is. lan: one of its own addresses, a private one (a
 * node on our LAN: nothing between us translates). host: one of its own addresses, a
 * public one (a peer without NAT). reflexive: its NAT's public mapping, as published.
 * peer-reflexive: an address its checks came from and none it published (the port a
 * symmetric NAT chose toward us, or a hairpinning router's LAN address).
 */
export type EndpointKind = 'lan' | 'host' | 'reflexive' | 'peer-reflexive';

const LAN_RANGES = new Set(['private', 'carrierGradeNat', 'linkLocal', 'uniqueLocal']);

export function endpointKind(peer: Pick<PeerCandidates, 'direct' | 'local'>, endpoint: string): EndpointKind {
  if (peer.local?.includes(endpoint)) {
    const address = endpoint.startsWith('[') ? endpoint.slice(1, endpoint.lastIndexOf(']')) : endpoint.slice(0, endpoint.lastIndexOf(':'));
    return ipaddr.isValid(address) && LAN_RANGES.has(ipaddr.parse(address).range()) ? 'lan' : 'host';
  }
  return peer.direct.some((e) => formatEndpoint(e) === endpoint) ? 'reflexive' : 'peer-reflexive';
}

/**
 * Of the peer's endpoints that answered a check within DIRECT_LOST_MS, the one WireGuard
 * should use: one of the peer's own addresses (lan or host) before anything through a
 * NAT, as ICE ranks host candidates above reflexive ones; the latest answer among equals.
 * So a LAN peer stays on its LAN address when its router also hairpins our checks (the
 * hairpinned answer often comes last), and a path that stops answering gives way.
 */
export function preferredSuccess(successes: readonly CheckSuccess[], peer: Pick<PeerCandidates, 'local'>, now: number): CheckSuccess | undefined {
  const own = (s: CheckSuccess) => (peer.local?.includes(formatEndpoint(s.endpoint)) ? 1 : 0);
  let best: CheckSuccess | undefined;
  for (const s of successes) {
    if (now - s.at >= DIRECT_LOST_MS) continue;
    if (!best || own(s) > own(best) || (own(s) === own(best) && s.at > best.at)) best = s;
  }
  return best;
}
