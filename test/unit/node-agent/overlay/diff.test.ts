import { describe, expect, it } from 'vitest';
import type { ActualOverlay } from '../../../../node-agent/overlay/actual.js';
import { diffOverlay, isEmpty, type OverlayChanges } from '../../../../node-agent/overlay/diff.js';
import { planOverlay, type OverlaySelf } from '../../../../node-agent/overlay/plan.js';
import type { DumpPeer } from '../../../../node-agent/wireguard/dump.js';
import { B, C, D, SELF } from './keys.js';

const IF = 'warren';
const self: OverlaySelf = {
  publicKey: SELF, privateKeyPath: '/k', hostAddress: '10.10.0.1', hostCidr: '10.10.0.0/16', podSubnet: '10.244.1.0/24',
  podCidr: '10.244.0.0/16', listenPort: 51820, mtu: 1420,
};
const peerB = { publicKey: B, hostAddress: '10.10.0.2', podSubnet: '10.244.2.0/24', endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 };
const peerC = { publicKey: C, hostAddress: '10.10.0.3', podSubnet: '10.244.3.0/24' };
const desired = planOverlay({ self, peers: [peerB, peerC] }).desired;

const dumpPeer = (p: Partial<DumpPeer> & { publicKey: string }): DumpPeer => ({
  hasPresharedKey: false, endpoint: undefined, allowedIps: [], latestHandshake: 0, rxBytes: 0, txBytes: 0, keepaliveSeconds: 0, ...p,
});

/** The device as it looks once `desired` is applied (and C has roamed in from 198.51.100.7). */
const converged = (): ActualOverlay => ({
  wg: {
    iface: { publicKey: SELF, listenPort: 51820, fwmark: undefined },
    peers: [
      dumpPeer({ publicKey: B, endpoint: '192.0.2.2:51820', allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], keepaliveSeconds: 25, latestHandshake: 1795442875 }),
      dumpPeer({ publicKey: C, endpoint: '198.51.100.7:40123', allowedIps: ['10.244.3.0/24', '10.10.0.3/32'] }),
    ],
  },
  mtu: 1420,
  up: true,
  addresses: ['10.10.0.1/16'],
  routes: [
    { dst: '10.244.0.0/16', kind: 'unreachable', type: 'unreachable', dev: undefined },
    { dst: '10.244.2.0/24', kind: 'interface', type: 'unicast', dev: IF },
    { dst: '10.244.3.0/24', kind: 'interface', type: 'unicast', dev: IF },
  ],
});

const none: OverlayChanges = {
  setPrivateKey: false, bringUp: false, removeAddresses: [], addAddresses: [], removePeers: [], setPeers: [], removeRoutes: [], addRoutes: [],
};

describe('diffOverlay', () => {
  it('finds nothing to do on a converged device, whatever order wg lists allowed IPs in', () => {
    const c = diffOverlay(desired, converged(), IF);
    expect(c).toEqual(none);
    expect(isEmpty(c)).toBe(true);
  });

  it('configures a fresh device completely', () => {
    const fresh: ActualOverlay = { wg: { iface: { publicKey: undefined, listenPort: 52184, fwmark: undefined }, peers: [] }, mtu: 1420, up: false, addresses: [], routes: [] };
    const c = diffOverlay(desired, fresh, IF);
    expect(c).toEqual({
      ...none,
      setPrivateKey: true,
      listenPort: 51820,
      bringUp: true,
      addAddresses: ['10.10.0.1/16'],
      setPeers: [
        { publicKey: B, allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 },
        { publicKey: C, allowedIps: ['10.10.0.3/32', '10.244.3.0/24'] },
      ],
      addRoutes: desired.routes,
    });
    expect(isEmpty(c)).toBe(false);
  });

  it('keeps a roamed endpoint when the desired state has no opinion, replaces it when it names another', () => {
    expect(diffOverlay(desired, converged(), IF).setPeers).toEqual([]);
    const moved = planOverlay({ self, peers: [peerB, { ...peerC, endpoint: '203.0.113.9:51820' }] }).desired;
    expect(diffOverlay(moved, converged(), IF).setPeers).toEqual([{ publicKey: C, endpoint: '203.0.113.9:51820' }]);
    const roamedB = converged();
    roamedB.wg.peers[0]!.endpoint = '198.51.100.8:1024';
    expect(diffOverlay(desired, roamedB, IF).setPeers).toEqual([{ publicKey: B, endpoint: '192.0.2.2:51820' }]);
  });

  it('renews a peer that gets its first endpoint, so its first handshake is not held back 5 s', () => {
    const actual = converged();
    actual.wg.peers[0] = { ...actual.wg.peers[0]!, endpoint: undefined };
    const c = diffOverlay(desired, actual, IF);
    expect(c.removePeers).toEqual([B]);
    expect(c.setPeers).toEqual([{ publicKey: B, allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 }]);
  });

  it('compares endpoints in canonical form', () => {
    const v6 = planOverlay({ self, peers: [{ ...peerB, endpoint: '[2001:DB8:0:0::7]:51820' }, peerC] }).desired;
    const actual = converged();
    actual.wg.peers[0]!.endpoint = '[2001:db8::7]:51820';
    expect(diffOverlay(v6, actual, IF).setPeers).toEqual([]);
  });

  it('removes a peer that left, with its route', () => {
    const onlyB = planOverlay({ self, peers: [peerB] }).desired;
    expect(diffOverlay(onlyB, converged(), IF)).toEqual({
      ...none,
      removePeers: [C],
      removeRoutes: [{ dst: '10.244.3.0/24', kind: 'interface', type: 'unicast', dev: IF }],
    });
  });

  it('replaces allowed IPs and keepalive when they change, and only those', () => {
    const changed = planOverlay({ self, peers: [{ ...peerB, podSubnet: '10.244.20.0/24', keepaliveSeconds: 0 }, peerC] }).desired;
    const c = diffOverlay(changed, converged(), IF);
    expect(c.setPeers).toEqual([{ publicKey: B, allowedIps: ['10.10.0.2/32', '10.244.20.0/24'], keepaliveSeconds: 0 }]);
    expect(c.addRoutes).toEqual([{ dst: '10.244.20.0/24', kind: 'interface' }]);
    expect(c.removeRoutes.map((r) => r.dst)).toEqual(['10.244.2.0/24']);
  });

  it('adds a new peer next to existing ones', () => {
    const withD = planOverlay({ self, peers: [peerB, peerC, { publicKey: D, hostAddress: '10.10.0.4', podSubnet: '10.244.4.0/24', keepaliveSeconds: 25 }] }).desired;
    const c = diffOverlay(withD, converged(), IF);
    expect(c.setPeers).toEqual([{ publicKey: D, allowedIps: ['10.10.0.4/32', '10.244.4.0/24'], keepaliveSeconds: 25 }]);
    expect(c.addRoutes).toEqual([{ dst: '10.244.4.0/24', kind: 'interface' }]);
  });

  it('repairs MTU, key, port and address after wireguard-go restarted on the kept TUN', () => {
    const restarted = converged();
    restarted.wg = { iface: { publicKey: undefined, listenPort: 40001, fwmark: undefined }, peers: [] };
    // wireguard-go sets its default 1420 when it attaches; this node wants 1380.
    const c = diffOverlay({ ...desired, mtu: 1380 }, restarted, IF);
    expect(c).toMatchObject({ setPrivateKey: true, listenPort: 51820, mtu: 1380, addAddresses: [], addRoutes: [], removeRoutes: [] });
    expect(c.setPeers.map((p) => p.publicKey)).toEqual([B, C]);
  });

  it("replaces a stale address and a Warren route on the wrong device, and leaves others' routes alone", () => {
    const actual = converged();
    actual.addresses = ['10.10.0.9/16', '10.10.0.1/24'];
    actual.routes[1] = { dst: '10.244.2.0/24', kind: 'interface', type: 'unicast', dev: 'eth0' };
    actual.routes.push({ dst: '10.98.0.0/16', kind: 'other', type: 'blackhole', dev: undefined });
    const c = diffOverlay(desired, actual, IF);
    expect(c.removeAddresses).toEqual(['10.10.0.9/16', '10.10.0.1/24']);
    expect(c.addAddresses).toEqual(['10.10.0.1/16']);
    expect(c.removeRoutes.map((r) => `${r.type} ${r.dst} ${r.dev}`)).toEqual(['unicast 10.244.2.0/24 eth0', 'blackhole 10.98.0.0/16 undefined']);
    expect(c.addRoutes).toEqual([{ dst: '10.244.2.0/24', kind: 'interface' }]);
  });
});
