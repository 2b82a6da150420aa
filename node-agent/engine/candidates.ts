// Pure: what path.ts needs of a peer, from the record the peer published.
import { formatEndpoint, type Endpoint } from '../nat/stun-address.js';
import type { NodeRecord } from '../signal/record.js';
import type { PeerCandidates } from './path.js';

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
  }
  const fingerprint = JSON.stringify({ direct: direct.map(formatEndpoint), relay: relay && formatEndpoint(relay) });
  return { fingerprint, direct, ...(relay ? { relay } : {}) };
}
