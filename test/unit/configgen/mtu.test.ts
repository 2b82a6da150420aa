import { describe, expect, it } from 'vitest';
import { defaultRouteDevice, MtuError, podMtu, uplinkMtu } from '../../../lib/mtu.js';
import type { Runner } from '../../../lib/runner.js';

describe('podMtu', () => {
  it('leaves room for WireGuard over IPv6 (80 bytes)', () => {
    expect(podMtu(1500)).toBe(1420);
    expect(podMtu(9000)).toBe(8920);
  });
  it('refuses an uplink too small for IPv6 pods', () => {
    expect(() => podMtu(1300)).toThrow(MtuError);
    expect(() => podMtu(0)).toThrow(/not a positive whole number/);
  });
});

describe('defaultRouteDevice', () => {
  it('prefers the lowest metric, IPv4 before IPv6', () => {
    expect(defaultRouteDevice([{ dst: 'default', dev: 'wlan0', metric: 600 }, { dst: 'default', dev: 'eth0', metric: 100 }], [])).toBe('eth0');
    expect(defaultRouteDevice([], [{ dst: 'default', dev: 'eth6' }])).toBe('eth6');
    expect(defaultRouteDevice([{ dst: '10.0.0.0/8', dev: 'eth1' }], [])).toBeUndefined();
  });
});

describe('uplinkMtu', () => {
  // `ip -json` output as iproute2 6.1 prints it, answered by a table runner.
  const answers: Record<string, string> = {
    'ip -json -4 route show default': '[{"dst":"default","gateway":"192.0.2.1","dev":"ens3","protocol":"dhcp","metric":100,"flags":[]}]\n',
    'ip -json link show dev ens3': '[{"ifindex":2,"ifname":"ens3","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":9001,"qdisc":"mq","operstate":"UP"}]\n',
  };
  const runner: Runner = async (file, args) => {
    const key = [file, ...args].join(' ');
    const stdout = answers[key];
    if (stdout === undefined) throw new Error(`unexpected command: ${key}`);
    return { stdout, stderr: '', exitCode: 0 };
  };

  it('reads the default route\'s interface MTU from ip -json', async () => {
    expect(await uplinkMtu(runner)).toEqual({ device: 'ens3', mtu: 9001 });
  });

  it('says so when there is no default route', async () => {
    const none: Runner = async (_file, args) => ({ stdout: args.includes('route') ? '[]\n' : '', stderr: '', exitCode: 0 });
    await expect(uplinkMtu(none)).rejects.toThrow('no default route');
  });
});
