import { describe, expect, it } from 'vitest';
import { desiredNode, networkCondition, nodeFileCondition, type OverlayFacts } from '../../../../node-agent/kube/desired.js';
import { ETCD_GRACE_MS } from '../../../../node-agent/kube/knobs.js';

const now = new Date('2026-11-23T12:00:00Z');
const connected = { state: 'connected' as const, since: new Date('2026-11-23T11:00:00Z') };
const upFacts: OverlayFacts = {
  interface: 'warren', backend: 'wireguard-go', hostAddress: '10.10.0.7', podSubnet: '10.244.7.0/24', publicKey: 'pk=',
  daemonDown: false, overlay: 'configured', record: { published: true, connection: connected },
  paths: ['direct', 'relayed', 'direct', 'checking', 'punching', 'new', 'unknown'],
};
const retrying = (sinceMsAgo: number) => ({ state: 'retrying' as const, since: new Date(now.getTime() - sinceMsAgo), attempts: 4, lastError: 'etcd at https://etcd:2379 unreachable (ECONNREFUSED)' });

describe('networkCondition', () => {
  it('is False (WarrenOverlayUp) once the interface is configured and the record published', () => {
    expect(networkCondition(upFacts, now)).toEqual({ unavailable: false, reason: 'WarrenOverlayUp', message: 'Warren overlay up on warren (wireguard-go), host address 10.10.0.7' });
  });

  it('is unknown (left alone) while the agent starts: no reconcile yet, or the record not written yet', () => {
    expect(networkCondition({ ...upFacts, overlay: 'pending' }, now)).toBeUndefined();
    expect(networkCondition({ ...upFacts, record: { published: false, connection: { state: 'starting', since: now } } }, now)).toBeUndefined();
  });

  it('is True when the WireGuard daemon does not answer, before anything else', () => {
    expect(networkCondition({ ...upFacts, daemonDown: true, overlay: { error: 'x' } }, now)).toEqual({
      unavailable: true, reason: 'WarrenWireGuardDown', message: 'wireguard-go does not answer for interface warren; the agent is starting it again',
    });
  });

  it('is True when configuring the interface failed, with the error', () => {
    expect(networkCondition({ ...upFacts, overlay: { error: 'ip route replace exited with status 2: RTNETLINK answers: No such device' } }, now)).toMatchObject({
      unavailable: true, reason: 'WarrenOverlayConfigFailed', message: 'configuring interface warren failed: ip route replace exited with status 2: RTNETLINK answers: No such device',
    });
  });

  it('is True when etcd has not taken the record for longer than a blip, saying since when', () => {
    const record = (ms: number) => ({ published: false, connection: retrying(ms) });
    expect(networkCondition({ ...upFacts, overlay: 'pending', record: record(ETCD_GRACE_MS - 1) }, now)).toBeUndefined();
    expect(networkCondition({ ...upFacts, overlay: 'pending', record: record(ETCD_GRACE_MS) }, now)).toEqual({
      unavailable: true, reason: 'WarrenEtcdUnreachable',
      message: 'this node\'s record is not in etcd, peers cannot reach it: etcd unreachable since 2026-11-23T11:59:45.000Z: etcd at https://etcd:2379 unreachable (ECONNREFUSED)',
    });
  });

  it('stays False through an etcd outage while the record still stands (its lease outlives the outage, as far as the agent knows)', () => {
    expect(networkCondition({ ...upFacts, record: { published: true, connection: retrying(60_000) } }, now)).toMatchObject({ unavailable: false });
  });

  it('names a missing node.json apart from an unreadable one', () => {
    expect(nodeFileCondition('/var/lib/warren/node.json cannot be read (ENOENT)', true)).toEqual({ unavailable: true, reason: 'WarrenNodeFileMissing', message: '/var/lib/warren/node.json cannot be read (ENOENT)' });
    expect(nodeFileCondition('mtu 9 ...', false).reason).toBe('WarrenNodeFileInvalid');
  });
});

describe('desiredNode', () => {
  it('annotates the host address, public key and the peers by path (no path yet counts as none)', () => {
    expect(desiredNode(upFacts, now, { publishPodCIDR: true })).toEqual({
      condition: networkCondition(upFacts, now),
      annotations: { 'warren.dev/host-address': '10.10.0.7', 'warren.dev/public-key': 'pk=', 'warren.dev/paths': 'direct=2,relayed=1,none=4' },
      podCIDR: '10.244.7.0/24',
    });
  });

  it('leaves the pod CIDR out when publishing it is off', () => {
    expect(desiredNode(upFacts, now, { publishPodCIDR: false }).podCIDR).toBeUndefined();
  });
});
