import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../cni/config.js';
import { hostVethName, podMac } from '../../../cni/naming.js';
import {
  bridgeAddressCommands, gateways, masqueradeInSync, masqueradeScript, ovsAttachCommands, podConfigCommands, podRoutes, vethAlias, vethCreateCommands,
} from '../../../cni/plan.js';
import type { CniResult } from '../../../cni/result.js';

const cfg = parseConfig({ cniVersion: '1.0.0', name: 'warren', type: 'warren', podCIDR: '10.244.0.0/16', ipam: { type: 'host-local' } });
const ipam: CniResult = { interfaces: [], ips: [{ address: '10.244.3.7/24', gateway: '10.244.3.1' }], routes: [], dns: {} };
const attachment = { containerId: 'c1', ifname: 'eth0', netns: '/run/netns/p', hostVeth: hostVethName('c1', 'eth0'), podNamespace: 'default', podName: 'web' };

describe('naming', () => {
  it('derives a 15-character host veth name that differs per attachment', () => {
    const a = hostVethName('c1', 'eth0');
    expect(a).toMatch(/^wrn[0-9a-f]{12}$/);
    expect(hostVethName('c1', 'eth0')).toBe(a);
    expect(hostVethName('c1', 'net1')).not.toBe(a);
    expect(hostVethName('c2', 'eth0')).not.toBe(a);
  });

  it('derives the pod MAC from its address (locally administered, unicast)', () => {
    expect(podMac('10.244.3.7')).toBe('0a:58:0a:f4:03:07');
    expect(podMac('fd00::a:b0c')).toBe('0a:58:00:0a:0b:0c');
  });
});

describe('gateway and routes', () => {
  it('puts the gateway on the bridge with the node subnet prefix, never the PodCIDR prefix', () => {
    const gws = gateways(ipam);
    expect(gws).toEqual([{ address: '10.244.3.1', prefix: 24, family: 4 }]);
    expect(bridgeAddressCommands('warren0', gws)).toEqual(['address replace 10.244.3.1/24 dev warren0', 'link set warren0 up']);
  });

  it('adds a default route via the gateway unless IPAM gave one', () => {
    expect(podRoutes(ipam, gateways(ipam), true)).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.3.1' }]);
    const withDefault = { ...ipam, routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.254' }] };
    expect(podRoutes(withDefault, gateways(withDefault), true)).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.3.254' }]);
    expect(podRoutes(ipam, gateways(ipam), false)).toEqual([]);
  });

  it('sends an IPAM route without gateway via the gateway of its family', () => {
    const r = { ...ipam, routes: [{ dst: '10.96.0.0/12' }] };
    expect(podRoutes(r, gateways(r), true)).toContainEqual({ dst: '10.96.0.0/12', gw: '10.244.3.1' });
  });

  it('configures the pod: MAC, address, link up, then routes', () => {
    expect(podConfigCommands('eth0', ipam, podRoutes(ipam, gateways(ipam), false))).toEqual([
      'link set eth0 address 0a:58:0a:f4:03:07',
      'address add 10.244.3.7/24 dev eth0',
      'link set eth0 up',
    ]);
  });

  it('with a gateway, sends everything through it, pods of the same subnet included (no on-link prefix route)', () => {
    expect(podConfigCommands('eth0', ipam, podRoutes(ipam, gateways(ipam), true), true)).toEqual([
      'link set eth0 address 0a:58:0a:f4:03:07',
      'address add 10.244.3.7/24 dev eth0 noprefixroute',
      'link set eth0 up',
      'route replace 10.244.3.1/32 dev eth0 scope link',
      'route replace 0.0.0.0/0 via 10.244.3.1 dev eth0',
    ]);
  });

  it('skips duplicate address detection for IPv6 (the pod must be reachable at once)', () => {
    const v6: CniResult = { interfaces: [], ips: [{ address: 'fd00::5/64', gateway: 'fd00::1' }], routes: [], dns: {} };
    expect(podConfigCommands('eth0', v6, [])).toContain('address add fd00::5/64 dev eth0 nodad');
  });
});

describe('links and OVS', () => {
  it('creates the pod end inside the pod netns under its final name', () => {
    expect(vethCreateCommands(attachment, 1400, 'wtest')).toEqual([
      `link add ${attachment.hostVeth} mtu 1400 type veth peer name eth0 mtu 1400 netns /run/netns/p`,
      `link set ${attachment.hostVeth} alias warren-network=wtest`,
      `link set ${attachment.hostVeth} up`,
    ]);
  });

  it('marks the host veth with its network, hashed when the name could not be an alias as it is', () => {
    expect(vethAlias('k8s-pod-network')).toBe('warren-network=k8s-pod-network');
    expect(vethAlias('a b')).toMatch(/^warren-network#[0-9a-f]+$/);
    expect(vethAlias('n'.repeat(300))).toMatch(/^warren-network#[0-9a-f]+$/);
    expect(vethAlias('a b')).not.toBe(vethAlias('a  b'));
  });

  it('creates the bridge only when missing, and tags the port with the attachment', () => {
    const fresh = ovsAttachCommands(cfg, attachment, false, 'netdev', 1400);
    expect(fresh[0]).toEqual(['--may-exist', 'add-br', 'warren0']);
    expect(fresh).toContainEqual(['set', 'Bridge', 'warren0', 'datapath_type=netdev']);
    const existing = ovsAttachCommands(cfg, attachment, true, 'netdev', 1400);
    expect(existing.some((c) => c.includes('datapath_type=netdev'))).toBe(false);
    const tags = existing.find((c) => c[0] === 'set' && c[2] === attachment.hostVeth)!;
    expect(tags).toContain('external_ids:cni-container-id="c1"');
    expect(tags).toContain('external_ids:k8s-pod-name="web"');
    expect(tags).toContain('external_ids:warren-network="warren"');
  });
});

describe('masquerade', () => {
  it('is one chain per bridge, replaced atomically', () => {
    const s = masqueradeScript(cfg);
    expect(s).toContain('flush chain inet warren postrouting_warren0');
    expect(s).toContain('ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade');
    expect(s.match(/add rule/g)).toHaveLength(1);
  });

  it('removes the chain when masquerading is off', () => {
    const s = masqueradeScript({ ...cfg, ipMasq: false });
    expect(s).toContain('delete chain inet warren postrouting_warren0');
    expect(s).not.toContain('add rule');
  });

  it('uses ip6 matches for an IPv6 pod CIDR and sanitises bridge names', () => {
    const v6 = parseConfig({ cniVersion: '1.0.0', name: 'n', type: 'warren', bridge: 'br-pods.1', podCIDR: 'fd00:10::/48', ipam: { type: 'host-local' } });
    const s = masqueradeScript(v6);
    expect(s).toContain('postrouting_br_pods_1');
    expect(s).toContain('ip6 saddr fd00:10::/48 ip6 daddr != fd00:10::/48 masquerade');
  });
});

describe('masqueradeInSync', () => {
  // As `nft -j list chain inet warren postrouting_warren0` printed it (nftables 1.0.6).
  const listed = (comment: string, extraRule = false) => ({
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { chain: { family: 'inet', table: 'warren', name: 'postrouting_warren0', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      { rule: { family: 'inet', table: 'warren', chain: 'postrouting_warren0', handle: 2, comment, expr: [
        { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '10.244.0.0', len: 16 } } } },
        { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: { prefix: { addr: '10.244.0.0', len: 16 } } } },
        { masquerade: null },
      ] } },
      ...(extraRule ? [{ rule: { family: 'inet', table: 'warren', chain: 'postrouting_warren0', handle: 3, expr: [{ accept: null }] } }] : []),
    ],
  });

  it('accepts the chain ADD wrote', () => {
    expect(masqueradeInSync(cfg, listed('warren: pods leaving 10.244.0.0/16'))).toBe(true);
  });

  it('rewrites a chain that is missing, for another pod CIDR, or holds an extra rule', () => {
    expect(masqueradeInSync(cfg, undefined)).toBe(false);
    expect(masqueradeInSync(cfg, listed('warren: pods leaving 10.245.0.0/16'))).toBe(false);
    expect(masqueradeInSync(cfg, listed('warren: pods leaving 10.244.0.0/16', true))).toBe(false);
  });

  it('wants no chain when masquerading is off', () => {
    expect(masqueradeInSync({ ...cfg, ipMasq: false }, undefined)).toBe(true);
    expect(masqueradeInSync({ ...cfg, ipMasq: false }, listed('warren: pods leaving 10.244.0.0/16'))).toBe(false);
  });
});
