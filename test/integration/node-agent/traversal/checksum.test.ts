// The port rewrite must leave valid UDP checksums. Between veths a checksum is usually
// left to "offload" (CHECKSUM_PARTIAL) and nobody ever verifies it, so a wrong update
// would pass unseen. Here some hops compute sums in software (`ethtool -K DEV tx off`),
// so that coturn and the node's own UDP stack receive complete sums and verify them:
//   outbound, host offload on:  partial sum rewritten, finished by the router's WAN veth;
//   outbound, host offload off: complete sum at the rewrite, updated incrementally;
//   inbound: the router's LAN veth completes the sum before the node's rewrite updates it.
// Controls prove the receivers verify: a byte changed without a checksum update is dropped.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { WgPortMapping } from '../../../../node-agent/traversal/prober.js';
import { enablePortShare } from '../../../../node-agent/traversal/port-share.js';
import { useNatLab } from '../../../helpers/natlab.js';
import type { Netns } from '../../../helpers/netns.js';
import { waitFor } from '../../../helpers/sh.js';
import { PROBE_PORT, WG_PORT } from './wg-hosts.js';

const WORKER = fileURLToPath(new URL('./prober-worker.ts', import.meta.url));
const ROUNDS = 20;

/** The Udp counters of /proc/net/snmp, which is per network namespace. */
async function udpStats(ns: Netns): Promise<Record<string, number>> {
  const lines = (await ns.runner('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
  if (!names || !values) throw new Error('no Udp counters in /proc/net/snmp');
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

async function txChecksumOffload(ns: Netns, dev: string, on: boolean): Promise<void> {
  await ns.runner('ethtool', ['-K', dev, 'tx', on ? 'on' : 'off']);
  const features = (await ns.runner('ethtool', ['-k', dev])).stdout;
  expect(features).toMatch(new RegExp(`^tx-checksumming: ${on ? 'on' : 'off'}`, 'm'));
}

describe('UDP checksums through the port share, verified by the receivers', () => {
  const lab = useNatLab();

  it('STUN through the rewrite keeps every checksum valid, with the host\'s offload on and off', async () => {
    const site = await lab().addSite('masquerade');
    const router = site.routers[0]!;
    await enablePortShare(site.host.runner, { wgPort: WG_PORT, probePort: PROBE_PORT });
    const w = await lab().startWorker(site.host, WORKER);
    // One transmission, short wait: the control's dropped answer fails in 400 ms, not 39 s.
    await w.call('open', WG_PORT, PROBE_PORT, { maxTransmissions: 1, rtoMs: 200, lastWaitMultiplier: 2 });
    await txChecksumOffload(router, 'lan', false);

    const server = lab().stunServers[0]!;
    const control = (chain: string) => site.host.runner('nft', ['-f', '-'], { input: `table inet checksum_control {\n  ${chain}\n}\n` });
    // Each control breaks what that path's receiver checks: with offload on, the partial
    // sum left in the checksum field (finished over the payload later, so a changed payload
    // byte would pass); with offload off, a payload byte.
    const phases = [
      { hostOffload: true, corrupt: '@th,48,16 set 0xbeef' },
      { hostOffload: false, corrupt: '@th,64,8 set 0x57' },
    ];
    for (const { hostOffload, corrupt } of phases) {
      await txChecksumOffload(site.host, 'eth0', hostOffload);
      await txChecksumOffload(router, 'wan', !hostOffload);
      const [turn0, host0] = [await udpStats(lab().turnNs), await udpStats(site.host)];
      for (let i = 0; i < ROUNDS; i++) {
        const m = await w.call<WgPortMapping>('reflexive', lab().stunServers);
        expect(m.failed).toEqual([]);
        expect(m.reflexive).toEqual({ address: site.publicAddress, port: WG_PORT });
      }
      const [turn1, host1] = [await udpStats(lab().turnNs), await udpStats(site.host)];
      expect(turn1.InCsumErrors, `coturn, host offload ${hostOffload}`).toBe(turn0.InCsumErrors);
      expect(host1.InCsumErrors, `host, host offload ${hostOffload}`).toBe(host0.InCsumErrors);
      expect(turn1.InDatagrams! - turn0.InDatagrams!).toBe(ROUNDS * lab().stunServers.length);
      // The host also counts the loopback check's two datagrams per round.
      expect(host1.InDatagrams! - host0.InDatagrams!).toBe(ROUNDS * (lab().stunServers.length + 2));

      // Control, outbound: changed after the rewrite without a checksum update, dropped by coturn.
      await control(`chain out { type filter hook output priority filter; udp dport ${server.port} ${corrupt}; }`);
      await w.call('punch', server, 64);
      await waitFor('coturn\'s kernel to drop the corrupted datagram', async () => (await udpStats(lab().turnNs)).InCsumErrors === turn1.InCsumErrors! + 1);
      await site.host.runner('nft', ['delete', 'table', 'inet', 'checksum_control']);
    }

    // Control, inbound: an answer changed before the rewrite (still diverted), sum untouched, is dropped by the host.
    await control(`chain pre { type filter hook prerouting priority -400; udp sport ${server.port} @th,72,8 set 0x11; }`);
    const hostBefore = (await udpStats(site.host)).InCsumErrors!;
    await expect(w.call('reflexive', [server])).rejects.toMatchObject({ code: 'STUN_TIMEOUT' });
    expect((await udpStats(site.host)).InCsumErrors).toBe(hostBefore + 1);
    await site.host.runner('nft', ['delete', 'table', 'inet', 'checksum_control']);
    expect((await w.call<WgPortMapping>('reflexive', [server])).failed).toEqual([]);
  });
});
