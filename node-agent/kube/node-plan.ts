// What this node's Node object should say, and the patches that make it say so. Pure: the
// desired state and the Node as read in, patches out, none when the Node already says it.
// The publisher (publisher.ts) only reads the Node and sends what this returns.
//
// NetworkUnavailable is written the way Kubernetes' own route controller writes it
// (nodeutil.SetNodeCondition): a strategic-merge patch of nodes/status whose one
// condition is merged into the list by its `type`, lastHeartbeatTime stamped with the
// write, and only when something changed: the condition is not a heartbeat that must be
// renewed. lastTransitionTime moves only when the status flips; left out of the patch,
// the merge keeps the one the Node has.
import { CidrError, formatCidr, parseCidr } from '../../lib/cidr.js';

export const NETWORK_UNAVAILABLE = 'NetworkUnavailable';

export const ANNOTATIONS = {
  /** The node's host-overlay address (node.json). */
  hostAddress: 'warren.dev/host-address',
  /** Its WireGuard public key. */
  publicKey: 'warren.dev/public-key',
  /** Peers by path, "direct=2,relayed=1,none=0". */
  paths: 'warren.dev/paths',
} as const;

export interface NetworkCondition {
  /** NetworkUnavailable "True" when set. */
  unavailable: boolean;
  /** CamelCase, as Kubernetes' reasons are. */
  reason: string;
  message: string;
}

export interface DesiredNode {
  /** Undefined while the agent does not know yet (starting): the condition is left as it is. */
  condition?: NetworkCondition;
  /** Only these keys are compared and written; the Node's other annotations are not touched. */
  annotations: Record<string, string>;
  /** Set when the config says to publish the pod CIDR. */
  podCIDR?: string;
}

/** What the planner reads of a Node (api.ts makes it from the client's V1Node). */
export interface NodeView {
  annotations: Record<string, string>;
  podCIDR?: string;
  podCIDRs: string[];
  networkCondition?: { status: string; reason?: string; message?: string };
}

/** A strategic-merge patch of the Node itself or of its status subresource. */
export interface NodePatch {
  target: 'node' | 'status';
  body: Record<string, unknown>;
  /** What it changes, for logs. */
  changes: string[];
}

export interface NodePlan {
  patches: NodePatch[];
  /** The Node has another pod CIDR: it is never overwritten (the API refuses a change anyway). */
  podCIDRConflict?: { node: string; ours: string };
}

/** metav1.Time: RFC 3339 to the second. */
export function kubeTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function sameCidr(a: string, b: string): boolean {
  try {
    return formatCidr(parseCidr(a, { strict: false })) === formatCidr(parseCidr(b, { strict: false }));
  } catch (err) {
    if (err instanceof CidrError) return a === b;
    throw err;
  }
}

function conditionStatus(c: NetworkCondition): 'True' | 'False' {
  return c.unavailable ? 'True' : 'False';
}

/** The annotations and the pod CIDR: one patch of the Node, or none. */
function nodePatch(desired: DesiredNode, current: NodeView): { patch?: NodePatch; podCIDRConflict?: NodePlan['podCIDRConflict'] } {
  const body: Record<string, unknown> = {};
  const changes: string[] = [];
  const annotations = Object.entries(desired.annotations).filter(([k, v]) => current.annotations[k] !== v);
  if (annotations.length) {
    body.metadata = { annotations: Object.fromEntries(annotations) };
    changes.push(...annotations.map(([k, v]) => `${k}=${v}`));
  }
  let podCIDRConflict: NodePlan['podCIDRConflict'];
  const ours = desired.podCIDR;
  if (ours !== undefined) {
    const existing = [...new Set([current.podCIDR, ...current.podCIDRs].filter((c): c is string => !!c))];
    if (existing.length === 0) {
      // Both fields, as the controller-manager's allocator writes them (podCIDR = podCIDRs[0]).
      body.spec = { podCIDR: ours, podCIDRs: [ours] };
      changes.push(`spec.podCIDR=${ours}`);
    } else if (!existing.some((c) => sameCidr(c, ours))) {
      podCIDRConflict = { node: existing.join(','), ours };
    }
  }
  return { patch: changes.length ? { target: 'node', body, changes } : undefined, podCIDRConflict };
}

function statusPatch(desired: NetworkCondition | undefined, current: NodeView['networkCondition'], now: Date): NodePatch | undefined {
  if (!desired) return undefined;
  const status = conditionStatus(desired);
  if (current && current.status === status && current.reason === desired.reason && current.message === desired.message) return undefined;
  const at = kubeTime(now);
  const condition = {
    type: NETWORK_UNAVAILABLE,
    status,
    reason: desired.reason,
    message: desired.message,
    lastHeartbeatTime: at,
    ...(current?.status === status ? {} : { lastTransitionTime: at }),
  };
  return { target: 'status', body: { status: { conditions: [condition] } }, changes: [`${NETWORK_UNAVAILABLE}=${status} (${desired.reason})`] };
}

/**
 * The patches that make `current` say `desired`, the Node's own first: its pod CIDR is in
 * place before NetworkUnavailable=False lets pods be scheduled.
 */
export function planNodePatches(desired: DesiredNode, current: NodeView, now: Date): NodePlan {
  const { patch, podCIDRConflict } = nodePatch(desired, current);
  const status = statusPatch(desired.condition, current.networkCondition, now);
  return { patches: [patch, status].filter((p): p is NodePatch => p !== undefined), podCIDRConflict };
}
