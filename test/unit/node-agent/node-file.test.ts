import { describe, expect, it } from 'vitest';
import { localCandidates } from '../../../node-agent/local-candidates.js';
import { parseNodeFile } from '../../../lib/node-file.js';

// As warren-configgen writes it.
const written = { node: 'node1', podSubnet: '10.244.3.0/24', gateway: '10.244.3.1', hostAddress: '10.10.0.3', podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16', bridge: 'warren0', mtu: 1420 };

describe('parseNodeFile', () => {
  it('reads what configgen writes', () => {
    expect(parseNodeFile('/var/lib/warren/node.json', JSON.stringify(written))).toEqual({
      node: 'node1', podSubnet: '10.244.3.0/24', hostAddress: '10.10.0.3', podCIDR: '10.244.0.0/16', hostCIDR: '10.10.0.0/16', mtu: 1420,
    });
  });
  it.each([
    ['not JSON', '{', /is not JSON/],
    ['a missing subnet', JSON.stringify({ ...written, podSubnet: undefined }), /podSubnet undefined in n.json must be a CIDR/],
    ['a host address outside the host CIDR', JSON.stringify({ ...written, hostAddress: '10.11.0.3' }), /hostAddress 10.11.0.3 in n.json is outside hostCIDR 10.10.0.0\/16/],
    ['a small MTU', JSON.stringify({ ...written, mtu: 500 }), /mtu 500/],
  ])('refuses %s', (_, text, message) => {
    expect(() => parseNodeFile('n.json', text)).toThrow(message);
  });
});

describe('localCandidates', () => {
  it('offers global IPv4 addresses outside the overlay and pod ranges, on the WireGuard port', () => {
    const links = [
      { ifname: 'lo', ifindex: 1, mtu: 65536, flags: ['LOOPBACK', 'UP'], addr_info: [{ family: 'inet' as const, local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
      { ifname: 'eth0', ifindex: 2, mtu: 1500, addr_info: [
        { family: 'inet' as const, local: '192.168.1.20', prefixlen: 24, scope: 'global' },
        { family: 'inet6' as const, local: 'fe80::1', prefixlen: 64, scope: 'link' },
      ] },
      { ifname: 'warren', ifindex: 3, mtu: 1420, addr_info: [{ family: 'inet' as const, local: '10.10.0.3', prefixlen: 16, scope: 'global' }] },
      { ifname: 'warren0', ifindex: 4, mtu: 1420, addr_info: [{ family: 'inet' as const, local: '10.244.3.1', prefixlen: 24, scope: 'global' }] },
    ];
    expect(localCandidates(links, { listenPort: 51820, exclude: ['10.10.0.0/16', '10.244.0.0/16'], skipInterfaces: ['warren'] }))
      .toEqual([{ kind: 'local', address: '192.168.1.20', port: 51820 }]);
  });
});
