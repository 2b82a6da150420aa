import { describe, expect, it } from 'vitest';
import { applyOverlay, overlayCommands } from '../../../../node-agent/overlay/apply.js';
import type { OverlayChanges } from '../../../../node-agent/overlay/diff.js';
import { planOverlay } from '../../../../node-agent/overlay/plan.js';
import type { Runner } from '../../../../lib/runner.js';
import { B, C, D, SELF } from './keys.js';

const desired = planOverlay({
  self: { publicKey: SELF, privateKeyPath: '/var/lib/warren/wireguard.key', hostAddress: '10.10.0.1', hostCidr: '10.10.0.0/16', podSubnet: '10.244.1.0/24', listenPort: 51820, mtu: 1420 },
  peers: [],
}).desired;
const none: OverlayChanges = {
  setPrivateKey: false, bringUp: false, removeAddresses: [], addAddresses: [], removePeers: [], setPeers: [], removeRoutes: [], addRoutes: [],
};

describe('overlayCommands', () => {
  it('runs nothing for no changes', () => {
    expect(overlayCommands('warren', desired, none)).toEqual({ ipBefore: [], wg: undefined, ipAfter: [] });
  });

  it('orders link, addresses and stale routes before wg, new routes after, all owned by proto 87', () => {
    const c = overlayCommands('warren', desired, {
      setPrivateKey: true,
      listenPort: 51820,
      mtu: 1420,
      bringUp: true,
      removeAddresses: ['10.10.0.9/16'],
      addAddresses: ['10.10.0.1/16'],
      removePeers: [D],
      setPeers: [
        { publicKey: B, allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], endpoint: '192.0.2.2:51820', keepaliveSeconds: 25 },
        { publicKey: C, keepaliveSeconds: 0 },
      ],
      removeRoutes: [
        { dst: '10.244.4.0/24', kind: 'interface', type: 'unicast', dev: 'warren' },
        { dst: '10.98.0.0/16', kind: 'other', type: 'blackhole', dev: undefined },
      ],
      addRoutes: [{ dst: '10.244.0.0/16', kind: 'unreachable' }, { dst: '10.244.2.0/24', kind: 'interface' }],
    });
    expect(c.ipBefore).toEqual([
      'link set dev warren mtu 1420',
      'link set dev warren up',
      'addr del 10.10.0.9/16 dev warren',
      'addr replace 10.10.0.1/16 dev warren',
      'route del 10.244.4.0/24 dev warren proto 87 table main',
      'route del blackhole 10.98.0.0/16 proto 87 table main',
    ]);
    expect(c.wg).toEqual([
      'set', 'warren', 'private-key', '/var/lib/warren/wireguard.key', 'listen-port', '51820',
      'peer', D, 'remove',
      'peer', B, 'allowed-ips', '10.10.0.2/32,10.244.2.0/24', 'endpoint', '192.0.2.2:51820', 'persistent-keepalive', '25',
      'peer', C, 'persistent-keepalive', 'off',
    ]);
    expect(c.ipAfter).toEqual([
      'route replace unreachable 10.244.0.0/16 proto 87 table main',
      'route replace 10.244.2.0/24 dev warren proto 87 table main',
    ]);
  });
});

describe('applyOverlay', () => {
  it('runs one ip batch, one wg, one ip batch, and nothing when nothing changes', async () => {
    const calls: string[] = [];
    const runner: Runner = async (file, args, o) => {
      calls.push(`${file} ${args.join(' ')}${o?.input ? ` <<${o.input.trim().split('\n').length} lines` : ''}`);
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    await applyOverlay(runner, 'warren', desired, none);
    expect(calls).toEqual([]);
    await applyOverlay(runner, 'warren', desired, { ...none, bringUp: true, setPrivateKey: true, addRoutes: [{ dst: '10.244.2.0/24', kind: 'interface' }] });
    expect(calls).toEqual([
      'ip -batch - <<1 lines',
      'wg set warren private-key /var/lib/warren/wireguard.key',
      'ip -batch - <<1 lines',
    ]);
  });
});
