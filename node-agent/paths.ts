// Each peer's path as the status shows it, and peers counted by path for the Node's
// annotation (kube/) and the metrics (metrics/): the path engine's phases as they are, a
// peer the engine has not stepped yet counted as "none".
import type { PeerStatus as EnginePeer } from './engine/engine.js';
import type { NoPathReason } from './engine/path.js';

export const PATH_LABELS = ['direct', 'relayed', 'checking', 'punching', 'none'] as const;
export type PathLabel = (typeof PATH_LABELS)[number];

const NO_PATH: Record<NoPathReason, string> = {
  'no-own-relay': 'no direct path, and this node has no TURN relay',
  'no-peer-relay': 'no direct path, and the peer published no TURN relay',
  'relay-link-not-open': 'no direct path, and the relay link is not open yet',
};

/**
 * The engine's phase, with the reason in words when it is none and what the endpoint is
 * (`via`): when direct lan, host, reflexive or peer-reflexive; when relayed the transport
 * of this node's relay (udp, tcp, tls). "unknown" for a peer the engine has not seen yet.
 */
export function peerPath(engine: Pick<EnginePeer, 'phase' | 'reason' | 'via'> | undefined, relayTransport?: string): { path: string; reason?: string; via?: string } {
  if (!engine) return { path: 'unknown' };
  if (engine.reason) return { path: engine.phase, reason: NO_PATH[engine.reason] };
  const via = engine.via ?? (engine.phase === 'relayed' ? relayTransport : undefined);
  return via ? { path: engine.phase, via } : { path: engine.phase };
}

function pathLabel(phase: string): PathLabel {
  return (PATH_LABELS as readonly string[]).includes(phase) ? (phase as PathLabel) : 'none';
}

/** Every label, zero included: a dashboard's series do not come and go. */
export function countPaths(phases: readonly string[]): Record<PathLabel, number> {
  const counts = Object.fromEntries(PATH_LABELS.map((l) => [l, 0])) as Record<PathLabel, number>;
  for (const p of phases) counts[pathLabel(p)]++;
  return counts;
}

/** "direct=2,relayed=1,none=0": a peer still punching or checking has no path yet. */
export function pathSummary(phases: readonly string[]): string {
  const c = countPaths(phases);
  return `direct=${c.direct},relayed=${c.relayed},none=${c.checking + c.punching + c.none}`;
}
