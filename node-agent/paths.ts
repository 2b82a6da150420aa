// Peers counted by path, for the Node's annotation (kube/) and the metrics (metrics/):
// the path engine's phases, a peer the engine has no path for yet counted as "none".

export const PATH_LABELS = ['direct', 'relayed', 'checking', 'punching', 'none'] as const;
export type PathLabel = (typeof PATH_LABELS)[number];

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
