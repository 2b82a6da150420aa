// What the Node should say, from what the agent knows. Pure: the agent's state and the
// time in, the desired Node out (node-plan.ts turns it into patches).
//
// NetworkUnavailable=False once the overlay is up: the WireGuard interface configured
// (the last reconcile succeeded) and the node's own record published in etcd, so peers
// can reach it. True, with the reason, when the agent knows something in the way: the
// WireGuard daemon does not answer, configuring the interface failed, etcd has not taken
// the record for longer than a blip, node.json is missing (nodeFileCondition). While the
// agent merely has not got there yet (starting), the condition is left as the Node has
// it: an agent restart, which drops no traffic, must not taint the node.
import type { ConnectionState } from '../signal/connection-state.js';
import { pathSummary } from '../paths.js';
import { ETCD_GRACE_MS } from './knobs.js';
import { ANNOTATIONS, type DesiredNode, type NetworkCondition } from './node-plan.js';

export interface OverlayFacts {
  interface: string;
  /** "kernel" or "wireguard-go". */
  backend: string;
  hostAddress: string;
  podSubnet: string;
  publicKey: string;
  /** The backend's daemon does not answer (wireguard-go crashed or was killed). */
  daemonDown: boolean;
  /** The last reconcile of the interface: none yet, done, or failed with this message. */
  overlay: 'pending' | 'configured' | { error: string };
  /** The node's own record in etcd (the publisher's status). */
  record: { published: boolean; connection: ConnectionState };
  /** Each peer's path phase (engine). */
  paths: readonly string[];
}

export const REASONS = {
  up: 'WarrenOverlayUp',
  nodeFileMissing: 'WarrenNodeFileMissing',
  nodeFileInvalid: 'WarrenNodeFileInvalid',
  daemonDown: 'WarrenWireGuardDown',
  reconcileFailed: 'WarrenOverlayConfigFailed',
  etcdUnreachable: 'WarrenEtcdUnreachable',
} as const;

/** The agent stops here: it cannot run without node.json (warren-configgen writes it). */
export function nodeFileCondition(error: string, missing: boolean): NetworkCondition {
  return { unavailable: true, reason: missing ? REASONS.nodeFileMissing : REASONS.nodeFileInvalid, message: error };
}

/** Undefined while starting: nothing known to be wrong, the overlay not up yet. */
export function networkCondition(f: OverlayFacts, now: Date): NetworkCondition | undefined {
  if (f.daemonDown) {
    return { unavailable: true, reason: REASONS.daemonDown, message: `${f.backend} does not answer for interface ${f.interface}; the agent is starting it again` };
  }
  if (typeof f.overlay === 'object') {
    return { unavailable: true, reason: REASONS.reconcileFailed, message: `configuring interface ${f.interface} failed: ${f.overlay.error}` };
  }
  const c = f.record.connection;
  if (!f.record.published && c.state === 'retrying' && now.getTime() - c.since.getTime() >= ETCD_GRACE_MS) {
    return { unavailable: true, reason: REASONS.etcdUnreachable, message: `this node's record is not in etcd, peers cannot reach it: etcd unreachable since ${c.since.toISOString()}: ${c.lastError}` };
  }
  if (f.overlay === 'configured' && f.record.published) {
    return { unavailable: false, reason: REASONS.up, message: `Warren overlay up on ${f.interface} (${f.backend}), host address ${f.hostAddress}` };
  }
  return undefined;
}

export function desiredNode(f: OverlayFacts, now: Date, options: { publishPodCIDR: boolean }): DesiredNode {
  return {
    condition: networkCondition(f, now),
    annotations: {
      [ANNOTATIONS.hostAddress]: f.hostAddress,
      [ANNOTATIONS.publicKey]: f.publicKey,
      [ANNOTATIONS.paths]: pathSummary(f.paths),
    },
    podCIDR: options.publishPodCIDR ? f.podSubnet : undefined,
  };
}
