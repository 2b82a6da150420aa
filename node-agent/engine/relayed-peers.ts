// The peers this agent relays, kept in the state directory so that the next agent (after
// a restart, an upgrade, the hand-over from the systemd unit to the DaemonSet) takes
// their relay at once instead of leaving them without a path for a round of checks: the
// old agent's TURN allocation goes with it, and both ends need the new one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/write-file.js';

export const RELAYED_PEERS_FILE = 'relayed-peers.json';

/** Pure: the file's text -> peer names; anything unreadable is no hint at all. */
export function parseRelayedPeers(text: string): Set<string> {
  try {
    const doc = JSON.parse(text) as unknown;
    return new Set(Array.isArray(doc) ? doc.filter((n): n is string => typeof n === 'string') : []);
  } catch {
    return new Set();
  }
}

export function readRelayedPeers(stateDir: string): Set<string> {
  try {
    return parseRelayedPeers(readFileSync(join(stateDir, RELAYED_PEERS_FILE), 'utf8'));
  } catch {
    return new Set(); // first start
  }
}

/** Writes the set when it differs from what the file holds. */
export function writeRelayedPeers(stateDir: string, peers: Iterable<string>): void {
  writeFileAtomic(join(stateDir, RELAYED_PEERS_FILE), JSON.stringify([...peers].sort()) + '\n', 0o600);
}
