// The ip -json parsers on output captured on this machine.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAddrShow, parseRoutes } from '../../../../node-agent/overlay/actual.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../wireguard/fixtures/${name}`, import.meta.url), 'utf8'));

describe('parseAddrShow', () => {
  it('reads MTU, state and the global addresses of a wireguard-go TUN, leaving out link-local', () => {
    expect(parseAddrShow(fixture('ip-addr-node-a.json'))).toEqual({ mtu: 1420, up: true, addresses: ['10.10.0.1/16'] });
  });

  it('sees a link that is down', () => {
    expect(parseAddrShow([{ ifname: 'w', ifindex: 3, mtu: 1420, flags: ['POINTOPOINT', 'NOARP'], addr_info: [] }]).up).toBe(false);
  });
});

describe('parseRoutes', () => {
  it("reads Warren's routes: through a device, unreachable, other types, host routes given their prefix", () => {
    expect(parseRoutes([...fixture('ip-route4-proto87.json'), ...fixture('ip-route6-proto87.json')])).toEqual([
      { dst: '10.98.0.0/16', kind: 'other', type: 'blackhole', dev: undefined },
      { dst: '10.99.0.7/32', kind: 'interface', type: 'unicast', dev: 'wgf1' },
      { dst: '10.244.0.0/16', kind: 'unreachable', type: 'unreachable', dev: undefined },
      { dst: '10.244.2.0/24', kind: 'interface', type: 'unicast', dev: 'wgf0' },
      { dst: '10.244.3.0/24', kind: 'interface', type: 'unicast', dev: 'wgf0' },
      { dst: 'fd00:3::/64', kind: 'interface', type: 'unicast', dev: 'wgf0' },
    ]);
  });
});
