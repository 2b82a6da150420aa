import { describe, expect, it } from 'vitest';
import { convertResult, normalizeResult, type CniResult } from '../../../cni/result.js';
import { bestCommonVersion, compareVersions, SUPPORTED_VERSIONS } from '../../../cni/versions.js';

const result: CniResult = {
  interfaces: [{ name: 'warren0' }, { name: 'wrn0123456789ab' }, { name: 'eth0', mac: '0a:58:0a:f4:03:02', mtu: 1400, sandbox: '/run/netns/p' }],
  ips: [{ address: '10.244.3.2/24', gateway: '10.244.3.1', interface: 2 }, { address: 'fd00::2/64', gateway: 'fd00::1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1', mtu: 1380 }],
  dns: { nameservers: ['10.96.0.10'] },
};

// One table drives every version instead of a helper per version.
const expectations: Record<string, { ipVersion: boolean; ifaceMtu: boolean; routeMtu: boolean }> = {
  '0.3.0': { ipVersion: true, ifaceMtu: false, routeMtu: false },
  '0.3.1': { ipVersion: true, ifaceMtu: false, routeMtu: false },
  '0.4.0': { ipVersion: true, ifaceMtu: false, routeMtu: false },
  '1.0.0': { ipVersion: false, ifaceMtu: false, routeMtu: false },
  '1.1.0': { ipVersion: false, ifaceMtu: true, routeMtu: true },
};

describe('convertResult', () => {
  it('covers every supported version', () => {
    expect(Object.keys(expectations).sort()).toEqual([...SUPPORTED_VERSIONS].sort());
  });

  it.each(Object.entries(expectations))('speaks %s', (version, want) => {
    const out = convertResult(result, version) as { cniVersion: string; ips: Record<string, unknown>[]; interfaces: Record<string, unknown>[]; routes: Record<string, unknown>[] };
    expect(out.cniVersion).toBe(version);
    expect(out.ips.map((i) => i.version)).toEqual(want.ipVersion ? ['4', '6'] : [undefined, undefined]);
    expect(out.interfaces[2]!.mtu).toBe(want.ifaceMtu ? 1400 : undefined);
    expect(out.routes[0]!.mtu).toBe(want.routeMtu ? 1380 : undefined);
    expect(out.interfaces[2]!.sandbox).toBe('/run/netns/p');
    // what goes out comes back unchanged (apart from what the version cannot carry)
    expect(normalizeResult(out).ips).toEqual(result.ips);
  });
});

describe('normalizeResult', () => {
  it('reads a 0.4.0 host-local result', () => {
    const r = normalizeResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1' }], dns: {} });
    expect(r).toEqual({ interfaces: [], ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }], routes: [], dns: {} });
  });

  it('rejects a result without addresses in its IPs', () => {
    expect(() => normalizeResult({ ips: [{ gateway: '1.2.3.4' }] })).toThrow(/an IP has no address/);
  });

  it.each([
    [{ ips: [null] }, /ips holds something that is not an object/],
    [{ interfaces: [null] }, /interfaces holds something/],
    [{ ips: [{ address: '10.1.0.5' }] }, /IP address "10.1.0.5" is not an address with a prefix length/],
    [{ routes: [{ dst: 'default' }] }, /route dst "default"/],
  ])('rejects %j with code 6, not an exception of its own', (raw, msg) => {
    expect(() => normalizeResult(raw)).toThrow(expect.objectContaining({ cniCode: 6, message: expect.stringMatching(msg) }));
  });
});

describe('versions', () => {
  it('orders numerically, not as text', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });

  it('picks the highest version both sides know, not above the config', () => {
    expect(bestCommonVersion('1.1.0', ['0.1.0', '0.3.1', '1.0.0'])).toBe('1.0.0');
    expect(bestCommonVersion('0.4.0', ['0.3.1', '0.4.0', '1.0.0'])).toBe('0.4.0');
    expect(bestCommonVersion('1.1.0', ['0.1.0', '0.2.0'])).toBeUndefined();
  });
});
