// Which changes of the node's network are underlay changes: addresses, carrier and
// default routes count; the agent's WireGuard interface, the overlay's and pods' ranges,
// address-less veths and OVS ports, link-local and loopback addresses do not.
import { describe, expect, it } from 'vitest';
import type { IpAddrLink } from '../../../../lib/ip.js';
import { underlayChange, underlayView, type IpDefaultRoute } from '../../../../node-agent/underlay/view.js';

const scope = { skipInterfaces: ['wg0'], exclude: ['172.20.0.0/16', '10.244.0.0/16'] };

function link(ifname: string, addrs: string[], flags = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']): IpAddrLink {
  return {
    ifname, ifindex: 1, mtu: 1500, flags,
    addr_info: addrs.map((a) => {
      const [local, len] = a.split('/');
      return { family: local!.includes(':') ? 'inet6' : 'inet', local: local!, prefixlen: Number(len), scope: local!.startsWith('fe80') ? 'link' : 'global' };
    }),
  };
}

const node = (eth0 = '10.1.0.2/24', extra: IpAddrLink[] = []): IpAddrLink[] => [
  link('lo', ['127.0.0.1/8'], ['LOOPBACK', 'UP', 'LOWER_UP']),
  link('eth0', [eth0, 'fe80::1/64']),
  link('wg0', ['172.20.1.1/16'], ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP']),
  link('br-warren', ['10.244.1.1/24']),
  ...extra,
];
const defaults: IpDefaultRoute[] = [{ dst: 'default', gateway: '10.1.0.1', dev: 'eth0' }];

describe('underlayView', () => {
  it('keeps the uplink\'s global IPv4 address and the default route, nothing of the overlay or the pods', () => {
    expect(underlayView(node(), [...defaults, { dst: 'default', dev: 'wg0' }], scope)).toEqual({
      addresses: ['eth0 10.1.0.2/24 up'],
      routes: ['default via 10.1.0.1 dev eth0 metric 0'],
    });
  });

  it('sees no change when a pod\'s veth or an OVS port comes or goes', () => {
    const before = underlayView(node(), defaults, scope);
    const after = underlayView(node('10.1.0.2/24', [link('veth1a2b3c', ['fe80::2/64']), link('ovs-system', [], ['BROADCAST', 'MULTICAST'])]), defaults, scope);
    expect(underlayChange(before, after)).toBeUndefined();
  });

  it('sees an address replaced on the uplink', () => {
    const change = underlayChange(underlayView(node(), defaults, scope), underlayView(node('10.1.0.3/24'), defaults, scope));
    expect(change).toEqual({ added: ['eth0 10.1.0.3/24 up'], removed: ['eth0 10.1.0.2/24 up'] });
  });

  it('sees the default route moved to another gateway on another link', () => {
    const two = node('10.1.0.2/24', [link('eth1', ['10.101.0.2/24'])]);
    const change = underlayChange(underlayView(two, defaults, scope), underlayView(two, [{ dst: 'default', gateway: '10.101.0.1', dev: 'eth1', metric: 0 }], scope));
    expect(change).toEqual({ added: ['default via 10.101.0.1 dev eth1 metric 0'], removed: ['default via 10.1.0.1 dev eth0 metric 0'] });
  });

  it('sees the uplink lose its carrier', () => {
    const down = node().map((l) => (l.ifname === 'eth0' ? { ...l, flags: ['BROADCAST', 'MULTICAST', 'UP'] } : l));
    expect(underlayChange(underlayView(node(), defaults, scope), underlayView(down, defaults, scope))?.added).toEqual(['eth0 10.1.0.2/24 down']);
  });

  it('sees no change when only the order of what ip prints differs', () => {
    const a = node('10.1.0.2/24', [link('eth1', ['10.101.0.2/24'])]);
    expect(underlayChange(underlayView(a, defaults, scope), underlayView([...a].reverse(), defaults, scope))).toBeUndefined();
  });
});
