// Peers counted by path, for the Node's annotation (kube/) and the metrics (metrics/):
// the path engine's phases, a peer the engine has no path for yet counted as "none".

export const PATH_LABELS = ['direct', 'relayed', 'checking', 'punching', 'none'] as const;
export type PathLabel = (typeof PATH_LABELS)[number];

/**
 * What is true of a peer's path. The engine stays in its relayed phase when direct failed
 * even while no relay link is open (this node has no TURN allocation, or the peer published
 * no relay address): that peer has no path at all, and says why.
 */
export function truePath(phase: string, relayLinkOpen: boolean, relays: { own: boolean; peer: boolean }): { path: string; reason?: string } {
  if (phase !== 'relayed' || relayLinkOpen) return { path: phase };
  const reason = !relays.own ? 'no direct path, and this node has no TURN relay'
    : !relays.peer ? 'no direct path, and the peer published no TURN relay'
      : 'no direct path, and the relay link is not open yet';
  return { path: 'none', reason };
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
