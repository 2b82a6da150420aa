import { describe, expect, it } from 'vitest';
import { mtuFor, OverlayPlanError, planOverlay, type OverlayInput, type OverlaySelf } from '../../../../node-agent/overlay/plan.js';
import { B, C, D, SELF } from './keys.js';

const self: OverlaySelf = {
  publicKey: SELF, privateKeyPath: '/var/lib/warren/wireguard.key',
  hostAddress: '10.10.0.1', hostCidr: '10.10.0.0/16', podSubnet: '10.244.1.0/24', listenPort: 51820, mtu: 1420,
};
const peerB = { publicKey: B, hostAddress: '10.10.0.2', podSubnet: '10.244.2.0/24', endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 };
const peerC = { publicKey: C, hostAddress: '10.10.0.3', podSubnet: '10.244.3.0/24' };

describe('planOverlay', () => {
  it('puts the host address with the host prefix on the interface, each peer with its /32 and pod subnet', () => {
    const { desired, rejected } = planOverlay({ self, peers: [peerC, peerB] });
    expect(rejected).toEqual([]);
    expect(desired).toEqual({
      publicKey: SELF, privateKeyPath: '/var/lib/warren/wireguard.key', listenPort: 51820, mtu: 1420, address: '10.10.0.1/16',
      peers: [
        { publicKey: B, allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 },
        { publicKey: C, allowedIps: ['10.10.0.3/32', '10.244.3.0/24'], endpoint: undefined, keepaliveSeconds: 0 },
      ],
      routes: [{ dst: '10.244.2.0/24', kind: 'interface' }, { dst: '10.244.3.0/24', kind: 'interface' }],
    });
  });

  it('makes the rest of the pod CIDR unreachable when it is known, and never routes its own subnet', () => {
    const { desired } = planOverlay({ self: { ...self, podCidr: '10.244.0.0/16' }, peers: [peerB] });
    expect(desired.routes).toEqual([{ dst: '10.244.0.0/16', kind: 'unreachable' }, { dst: '10.244.2.0/24', kind: 'interface' }]);
  });

  it('routes the SD-EWAN overlay\'s ranges to the peer that is the active gateway, and never a range of this node\'s own', () => {
    const gateway = { ...peerB, routedRanges: ['10.30.0.0/16', '192.168.100.0/24', '10.244.0.0/16', 'not-a-cidr'] };
    const { desired, rejected } = planOverlay({ self: { ...self, podCidr: '10.244.0.0/16' }, peers: [gateway, peerC] });
    expect(desired.peers.find((p) => p.publicKey === B)!.allowedIps).toEqual(['10.10.0.2/32', '10.244.2.0/24', '10.30.0.0/16', '192.168.100.0/24']);
    expect(desired.peers.find((p) => p.publicKey === C)!.allowedIps).toEqual(['10.10.0.3/32', '10.244.3.0/24']);
    expect(desired.routes).toEqual(expect.arrayContaining([{ dst: '10.30.0.0/16', kind: 'interface' }, { dst: '192.168.100.0/24', kind: 'interface' }]));
    // The gateway stays a peer; only the ranges that cannot be are left out, each with why.
    expect(rejected).toEqual([
      { publicKey: B, reason: 'routed range 10.244.0.0/16 overlaps this node\'s 10.244.1.0/24' },
      { publicKey: B, reason: expect.stringMatching(/^routed range "not-a-cidr": /) },
    ]);
  });

  it('skips this node in the peer list', () => {
    const { desired, rejected } = planOverlay({ self, peers: [{ publicKey: SELF, hostAddress: '10.10.0.1', podSubnet: '10.244.1.0/24' }, peerB] });
    expect(desired.peers.map((p) => p.publicKey)).toEqual([B]);
    expect(rejected).toEqual([]);
  });

  it('is the same plan whatever order the peers come in', () => {
    expect(planOverlay({ self, peers: [peerB, peerC] })).toEqual(planOverlay({ self, peers: [peerC, peerB] }));
  });

  it('canonicalises endpoints and IPv6 addresses so that they compare with wg output', () => {
    const v6: OverlayInput = {
      self: { ...self, hostAddress: 'fd10::1', hostCidr: 'fd10::/64', podSubnet: 'fd44:1::/64' },
      peers: [{ publicKey: B, hostAddress: 'FD10:0:0:0::2', podSubnet: 'fd44:2::/64', endpoint: '[2001:DB8:0::7]:51900' }],
    };
    const { desired, rejected } = planOverlay(v6);
    expect(rejected).toEqual([]);
    expect(desired.address).toBe('fd10::1/64');
    expect(desired.peers[0]).toMatchObject({ allowedIps: ['fd10::2/128', 'fd44:2::/64'], endpoint: '[2001:db8::7]:51900' });
  });

  it('leaves out bad peers with a reason and keeps the good ones', () => {
    const { desired, rejected } = planOverlay({
      self: { ...self, podCidr: '10.244.0.0/16' },
      peers: [
        peerB,
        { publicKey: 'not-a-key', hostAddress: '10.10.0.9', podSubnet: '10.244.9.0/24' },
        { publicKey: C, hostAddress: '10.11.0.3', podSubnet: '10.244.3.0/24' },
        { publicKey: D, hostAddress: '10.10.0.4', podSubnet: '10.244.1.0/25' },
      ],
    });
    expect(desired.peers.map((p) => p.publicKey)).toEqual([B]);
    expect(rejected).toEqual([
      { publicKey: 'not-a-key', reason: 'public key is not a WireGuard key' },
      { publicKey: C, reason: 'host address 10.11.0.3 is not inside 10.10.0.0/16' },
      { publicKey: D, reason: "pod subnet 10.244.1.0/25 overlaps this node's 10.244.1.0/24" },
    ]);
    const more = planOverlay({
      self: { ...self, podCidr: '10.244.0.0/16' },
      peers: [
        { ...peerC, podSubnet: '10.245.3.0/24' },
        { ...peerC, publicKey: D, podSubnet: '10.244.3.1/24' },
        { ...peerC, publicKey: D, endpoint: 'node-c.example:51820' },
        { ...peerC, publicKey: D, keepaliveSeconds: -1 },
        { ...peerC, publicKey: D, hostAddress: '10.10.0.1' },
        { ...peerC, publicKey: D, podSubnet: '10.10.128.0/24' },
      ],
    });
    expect(more.desired.peers).toEqual([]);
    expect(more.rejected.map((r) => r.reason)).toEqual([
      'pod subnet 10.245.3.0/24 is outside the pod network 10.244.0.0/16',
      expect.stringMatching(/has host bits set/),
      'endpoint "node-c.example:51820" is not a literal ip:port',
      'keepalive -1 is outside 0..65535 seconds',
      "host address 10.10.0.1 is this node's",
      'pod subnet 10.10.128.0/24 overlaps the host network 10.10.0.0/16',
    ]);
  });

  it('leaves out every peer of a clash: WireGuard would silently hand the addresses to the last one', () => {
    const { desired, rejected } = planOverlay({
      self,
      peers: [peerB, { ...peerC, podSubnet: '10.244.2.128/25' }, { publicKey: D, hostAddress: '10.10.0.2', podSubnet: '10.244.4.0/24' }],
    });
    expect(desired.peers).toEqual([]);
    expect(desired.routes).toEqual([]);
    expect(rejected.map((r) => r.publicKey).sort()).toEqual([B, C, D].sort());
    expect(rejected.find((r) => r.publicKey === C)!.reason).toMatch(/shares its pod subnet/);
    expect(rejected.find((r) => r.publicKey === D)!.reason).toMatch(/shares its host address 10.10.0.2/);
    const dup = planOverlay({ self, peers: [peerB, { ...peerC, publicKey: B }] });
    expect(dup.desired.peers).toEqual([]);
    expect(dup.rejected.map((r) => r.reason)).toEqual(['shares its public key with another peer', 'shares its public key with another peer']);
  });

  it('refuses bad settings of this node outright', () => {
    const bad = (s: Partial<OverlaySelf>) => () => planOverlay({ self: { ...self, ...s }, peers: [] });
    expect(bad({ hostAddress: '10.11.0.1' })).toThrow(/hostAddress 10.11.0.1 is not inside hostCidr/);
    expect(bad({ hostCidr: '10.10.0.1/16' })).toThrow(/host bits set/);
    expect(bad({ podSubnet: '10.10.5.0/24' })).toThrow(/overlaps hostCidr/);
    expect(bad({ podCidr: '10.200.0.0/16' })).toThrow(/not inside podCidr/);
    expect(bad({ listenPort: 0 })).toThrow(/listenPort 0/);
    expect(bad({ mtu: 1000 })).toThrow(/mtu 1000/);
    expect(bad({ publicKey: 'x' })).toThrow(OverlayPlanError);
    expect(bad({ privateKeyPath: '' })).toThrow(/privateKeyPath/);
  });
});

describe('mtuFor', () => {
  it('takes 60 bytes over IPv4 and 80 over IPv6', () => {
    expect(mtuFor(1500, 4)).toBe(1440);
    expect(mtuFor(1500, 6)).toBe(1420);
    expect(mtuFor(9000, 4)).toBe(8940);
  });

  it('refuses an underlay that leaves less than IPv6 needs', () => {
    expect(() => mtuFor(1340, 6)).toThrow(OverlayPlanError);
    expect(mtuFor(1340, 4)).toBe(1280);
    expect(() => mtuFor(1500.5, 4)).toThrow(OverlayPlanError);
  });
});
