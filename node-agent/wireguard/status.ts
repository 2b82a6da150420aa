// What each tunnel is doing, for logs, metrics and the NAT-traversal logic that decides
// whether a path is alive: read from the same dump the reconciler reads.
import type { Runner } from '../../lib/runner.js';
import { readWgDump, type WgDump } from './dump.js';

export interface PeerStatus {
  publicKey: string;
  endpoint: string | undefined;
  /** Undefined when no handshake ever completed. */
  latestHandshake: Date | undefined;
  rxBytes: number;
  txBytes: number;
}

export function peerStatuses(dump: WgDump): PeerStatus[] {
  return dump.peers.map((p) => ({
    publicKey: p.publicKey,
    endpoint: p.endpoint,
    latestHandshake: p.latestHandshake === 0 ? undefined : new Date(p.latestHandshake * 1000),
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
  }));
}

export async function readStatus(runner: Runner, ifname: string): Promise<PeerStatus[]> {
  return peerStatuses(await readWgDump(runner, ifname));
}
