// Prometheus HTTP service discovery (GET /targets) from what every agent already knows:
// the nodes of the overlay and their host-overlay addresses. Prometheus builds without
// Kubernetes discovery (Debian's) and nodes outside Kubernetes are scraped the same way:
// any one agent's /targets lists every agent. Pure.
import { formatEndpoint } from '../nat/stun-address.js';
import type { AgentStatus } from '../status.js';

export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** One group per node, this one first; every agent serves its metrics on the same port. */
export function scrapeTargets(status: Pick<AgentStatus, 'node' | 'hostAddress' | 'peers'>, port: number): TargetGroup[] {
  const group = (node: string, address: string): TargetGroup => ({ targets: [formatEndpoint({ address, port })], labels: { node } });
  return [group(status.node, status.hostAddress), ...status.peers.map((p) => group(p.node, p.hostAddress))];
}
