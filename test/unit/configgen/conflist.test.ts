import { describe, expect, it } from 'vitest';
import { decodeConfig, parseConfig } from '../../../cni/config.js';
import { renderConflist, renderNodeFile, toFileText } from '../../../configgen/conflist.js';
import { allocationAt, carvePool } from '../../../configgen/pool.js';

const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
const input = { allocation: allocationAt(pool, 'node-a', 3), pool, bridge: 'warren0', mtu: 1420, logFile: '/var/log/warren/cni.log' };

describe('renderConflist', () => {
  it('writes the format warren-cni reads, for this node\'s subnet', () => {
    expect(renderConflist(input)).toEqual({
      cniVersion: '1.0.0',
      cniVersions: ['1.0.0', '1.1.0'],
      name: 'warren',
      plugins: [
        {
          type: 'warren', bridge: 'warren0', mtu: 1420, podCIDR: '10.244.0.0/16', isGateway: true, ipMasq: true,
          logFile: '/var/log/warren/cni.log',
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24', rangeStart: '10.244.3.2', rangeEnd: '10.244.3.254', gateway: '10.244.3.1' }]] },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
  });

  it('is accepted by the plugin\'s own config parser, optional fields included', () => {
    const conflist = renderConflist({ ...input, ovsdb: 'unix:/run/openvswitch/db.sock', ipamDataDir: '/var/lib/warren/ipam' });
    const plugin = (conflist.plugins as Record<string, unknown>[])[0]!;
    // The runtime hands each plugin its entry plus the list's name and cniVersion.
    const parsed = parseConfig(decodeConfig(JSON.stringify({ ...plugin, name: conflist.name, cniVersion: conflist.cniVersion })));
    expect(parsed).toMatchObject({ bridge: 'warren0', mtu: 1420, ovsdb: 'unix:/run/openvswitch/db.sock', isGateway: true, ipMasq: true });
    expect(parsed.ipam).toMatchObject({ type: 'host-local', dataDir: '/var/lib/warren/ipam' });
    expect(parseConfig({ ...plugin, name: 'warren', cniVersion: '1.1.0' }).cniVersion).toBe('1.1.0');
  });

  it('gives the same bytes for the same inputs', () => {
    expect(toFileText(renderConflist(input))).toBe(toFileText(renderConflist({ ...input })));
    expect(toFileText(renderConflist(input)).endsWith('}\n')).toBe(true);
  });
});

describe('renderNodeFile', () => {
  it('holds what the node agent needs', () => {
    expect(renderNodeFile(input)).toEqual({
      node: 'node-a', podSubnet: '10.244.3.0/24', gateway: '10.244.3.1', hostAddress: '10.10.0.4',
      podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16', bridge: 'warren0', mtu: 1420,
    });
  });
});
