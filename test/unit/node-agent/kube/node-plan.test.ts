import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, kubeTime, planNodePatches, type DesiredNode, type NodeView } from '../../../../node-agent/kube/node-plan.js';

const now = new Date('2026-11-23T12:00:00.123Z');
const up = { unavailable: false, reason: 'WarrenOverlayUp', message: 'Warren overlay up on warren (kernel), host address 10.10.0.7' };
const annotations = { [ANNOTATIONS.hostAddress]: '10.10.0.7', [ANNOTATIONS.publicKey]: 'pk=', [ANNOTATIONS.paths]: 'direct=2,relayed=1,none=0' };
const desired: DesiredNode = { condition: up, annotations, podCIDR: '10.244.7.0/24' };
/** A Node that already says everything `desired` says. */
const synced: NodeView = {
  annotations: { ...annotations, 'node.alpha.kubernetes.io/ttl': '0' },
  podCIDR: '10.244.7.0/24',
  podCIDRs: ['10.244.7.0/24'],
  networkCondition: { status: 'False', reason: up.reason, message: up.message },
};
/** As kubelet registers it: no annotations of ours, no pod CIDR, no NetworkUnavailable. */
const fresh: NodeView = { annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' }, podCIDRs: [] };

describe('planNodePatches', () => {
  it('sends nothing to a Node that already says it all', () => {
    expect(planNodePatches(desired, synced, now)).toEqual({ patches: [] });
  });

  it('writes a fresh Node in two patches, the Node itself first: the pod CIDR is in place before pods can be scheduled', () => {
    const plan = planNodePatches(desired, fresh, now);
    expect(plan.patches).toEqual([
      {
        target: 'node',
        body: { metadata: { annotations }, spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] } },
        changes: ['warren.dev/host-address=10.10.0.7', 'warren.dev/public-key=pk=', 'warren.dev/paths=direct=2,relayed=1,none=0', 'spec.podCIDR=10.244.7.0/24'],
      },
      {
        target: 'status',
        body: { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'WarrenOverlayUp', message: up.message, lastHeartbeatTime: '2026-11-23T12:00:00Z', lastTransitionTime: '2026-11-23T12:00:00Z' }] } },
        changes: ['NetworkUnavailable=False (WarrenOverlayUp)'],
      },
    ]);
    expect(plan.podCIDRConflict).toBeUndefined();
  });

  it('patches only the annotation that changed, and leaves others\' annotations alone', () => {
    const plan = planNodePatches({ ...desired, annotations: { ...annotations, [ANNOTATIONS.paths]: 'direct=3,relayed=0,none=0' } }, synced, now);
    expect(plan.patches).toEqual([{ target: 'node', body: { metadata: { annotations: { 'warren.dev/paths': 'direct=3,relayed=0,none=0' } } }, changes: ['warren.dev/paths=direct=3,relayed=0,none=0'] }]);
  });

  describe('NetworkUnavailable', () => {
    const condition = (plan: ReturnType<typeof planNodePatches>) => (plan.patches.find((p) => p.target === 'status')?.body as { status: { conditions: Record<string, string>[] } } | undefined)?.status.conditions[0];

    it('flips with a new lastTransitionTime', () => {
      const down = { unavailable: true, reason: 'WarrenWireGuardDown', message: 'wireguard-go does not answer' };
      expect(condition(planNodePatches({ ...desired, condition: down }, synced, now))).toEqual({
        type: 'NetworkUnavailable', status: 'True', reason: 'WarrenWireGuardDown', message: 'wireguard-go does not answer',
        lastHeartbeatTime: '2026-11-23T12:00:00Z', lastTransitionTime: '2026-11-23T12:00:00Z',
      });
    });

    it('keeps lastTransitionTime (left out: the merge keeps the Node\'s) when only the reason or message changes', () => {
      const current: NodeView = { ...synced, networkCondition: { status: 'True', reason: 'WarrenEtcdUnreachable', message: 'etcd unreachable since ...' } };
      const c = condition(planNodePatches({ ...desired, condition: { ...up, unavailable: true, reason: 'WarrenWireGuardDown' } }, current, now))!;
      expect(c.status).toBe('True');
      expect(c.lastHeartbeatTime).toBe('2026-11-23T12:00:00Z');
      expect('lastTransitionTime' in c).toBe(false);
    });

    it('is not rewritten while it holds: no heartbeat every loop', () => {
      for (let minutes = 0; minutes < 3; minutes++) {
        expect(planNodePatches(desired, synced, new Date(now.getTime() + minutes * 60_000)).patches).toEqual([]);
      }
    });

    it('takes over a condition someone else wrote (the route controller\'s NoRouteCreated), as a flip', () => {
      const current: NodeView = { ...synced, networkCondition: { status: 'True', reason: 'NoRouteCreated', message: 'Node created without a route' } };
      expect(condition(planNodePatches(desired, current, now))).toMatchObject({ status: 'False', reason: 'WarrenOverlayUp', lastTransitionTime: '2026-11-23T12:00:00Z' });
    });

    it('is left as the Node has it while the agent does not know yet', () => {
      const current: NodeView = { ...synced, networkCondition: { status: 'True', reason: 'Whatever' } };
      expect(planNodePatches({ ...desired, condition: undefined }, current, now).patches).toEqual([]);
      expect(planNodePatches({ ...desired, condition: undefined }, { ...fresh, annotations: { ...annotations } }, now).patches.map((p) => p.target)).toEqual(['node']);
    });

    it('treats Unknown as another status', () => {
      const current: NodeView = { ...synced, networkCondition: { status: 'Unknown', reason: up.reason, message: up.message } };
      expect(condition(planNodePatches(desired, current, now))).toHaveProperty('lastTransitionTime');
    });
  });

  describe('spec.podCIDR', () => {
    it('is set only when the Node has none', () => {
      const plan = planNodePatches(desired, { ...synced, podCIDR: undefined, podCIDRs: [] }, now);
      expect(plan.patches).toEqual([{ target: 'node', body: { spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] } }, changes: ['spec.podCIDR=10.244.7.0/24'] }]);
    });

    it('is never overwritten: a different one is reported as a conflict naming both', () => {
      const plan = planNodePatches(desired, { ...synced, podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.9.0/24'] }, now);
      expect(plan.patches).toEqual([]);
      expect(plan.podCIDRConflict).toEqual({ node: '10.244.9.0/24', ours: '10.244.7.0/24' });
    });

    it('counts as the same when written another way, or as one of a dual-stack pair', () => {
      expect(planNodePatches({ ...desired, podCIDR: 'fd00:0:0:7::/64' }, { ...synced, podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24', 'fd00::7:0:0:0:0/64'] }, now)).toEqual({ patches: [] });
    });

    it('is left alone when publishing it is off', () => {
      expect(planNodePatches({ ...desired, podCIDR: undefined }, { ...synced, podCIDR: undefined, podCIDRs: [] }, now)).toEqual({ patches: [] });
    });
  });

  it('writes metav1.Time to the second', () => {
    expect(kubeTime(new Date('2026-01-02T03:04:05.999Z'))).toBe('2026-01-02T03:04:05Z');
  });
});
