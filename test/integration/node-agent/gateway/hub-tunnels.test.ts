// The gateway's IPsec against a real charon standing in for an SD-EWAN hub: identities and
// certificates exactly as SCC issues them (root CA, overlay CA, CN=hub-<h>-cert,
// CN=device-<d>-cert), the hub a responder for %any with the device's data OIP as its
// only pool address and 0.0.0.0/0 on its side (SDEWAN.md §2.2). Both in namespaces joined
// by a veth; ESP through kernel-libipsec (this kernel has none).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ROUTE_PROTOCOL } from '../../../../node-agent/gateway/routes.js';
import { HubTunnels } from '../../../../node-agent/gateway/hub-tunnels.js';
import type { Charon } from '../../../helpers/charon.js';
import { startResponderHub } from '../../../helpers/sdewan/responder-hub.js';
import { Netns } from '../../../helpers/netns.js';
import { issueCert, SccPki, type IssuedCert } from '../../../helpers/sdewan/scc-server.js';
import { run, waitFor } from '../../../helpers/sh.js';

const PROPOSALS = ['aes256-sha256-modp4096'];
const HUB_ADDR = '198.51.100.1';
const DEV_ADDR = '198.51.100.2';
const OIP = '10.10.0.5';
const HUB_OVERLAY_ADDR = '10.10.0.1';

let pki: SccPki;
let dir: string;
let overlayCa: IssuedCert;
let hubNs: Netns;
let devNs: Netns;
let hub: Charon;
const logs: string[] = [];
const log = (level: string, msg: string, fields?: Record<string, unknown>): void => void logs.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

async function startHub(): Promise<void> {
  hub = await startResponderHub({ dir, ns: hubNs, hub: 'h1', device: 'edge1', oip: OIP, proposals: PROPOSALS, root: pki.root, overlayCa });
}

async function tunnels(device: IssuedCert, name: string): Promise<HubTunnels> {
  return new HubTunnels({
    dir: join(dir, name), runner: devNs.runner, netnsPath: devNs.path, log,
    identity: { device: 'edge1', certDer: der(device.certPem), keyPem: device.keyPem, caDers: [der(pki.root.certPem), der(overlayCa.certPem)] },
    hubs: [{ name: 'h1', address: HUB_ADDR }],
    settings: { proposals: PROPOSALS, dpdSeconds: 2 },
    overlayRanges: ['10.10.0.0/24'],
  });
}

const ping = async (to: string): Promise<boolean> => (await devNs.exec('ping', ['-c', '1', '-W', '1', to], { allowFailure: true })).exitCode === 0;

beforeAll(async () => {
  pki = await SccPki.create();
  dir = mkdtempSync(join(tmpdir(), 'warren-gw-'));
  overlayCa = await issueCert(dir, 'ovl-cert', pki.root, true);
  hubNs = await Netns.create('hub');
  devNs = await Netns.create('dev');
  await run('ip', ['link', 'add', `${devNs.name}v`.slice(0, 15), 'netns', devNs.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hubNs.name]);
  const devIf = `${devNs.name}v`.slice(0, 15);
  await devNs.runner('ip', ['link', 'set', devIf, 'name', 'eth0']);
  await devNs.runner('ip', ['addr', 'add', `${DEV_ADDR}/24`, 'dev', 'eth0']);
  await hubNs.runner('ip', ['addr', 'add', `${HUB_ADDR}/24`, 'dev', 'eth0']);
  await hubNs.runner('ip', ['addr', 'add', `${HUB_OVERLAY_ADDR}/32`, 'dev', 'lo']);
  for (const ns of [devNs, hubNs]) await ns.runner('ip', ['link', 'set', 'eth0', 'up']);
  await startHub();
}, 120_000);

afterAll(async () => {
  await hub?.stop();
  await hubNs?.destroy();
  await devNs?.destroy();
  pki?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('the gateway\'s IPsec to an SD-EWAN hub', () => {
  it('refuses nothing silently: a certificate for another device never brings the tunnel up, and no route appears', async () => {
    const other = await issueCert(dir, 'device-edge2-cert', overlayCa, false);
    const t = await tunnels(other, 'wrong');
    try {
      // The identity we claim is edge1's; the certificate is edge2's: charon refuses to use it.
      await t.start();
      await new Promise((r) => setTimeout(r, 4000));
      expect(t.hubStates()).toEqual([expect.objectContaining({ hub: 'h1', ike: 'connecting', child: 'down', oip: undefined })]);
      expect(await devNs.runner('ip', ['-json', 'route', 'show', 'proto', String(GATEWAY_ROUTE_PROTOCOL)]).then((r) => JSON.parse(r.stdout))).toEqual([]);
    } finally {
      await t.stop();
    }
    // The hub, not our side, said no.
    expect(readFileSync(join(dir, 'wrong', 'charon', 'charon.log'), 'utf8')).toContain('received AUTHENTICATION_FAILED notify error');
  }, 60_000);

  it('gets the data OIP from the hub, routes the overlay through it, and comes back by itself after the hub restarts', async () => {
    const device = await issueCert(dir, 'device-edge1-cert', overlayCa, false);
    const t = await tunnels(device, 'edge1');
    const t0 = Date.now();
    try {
      await t.start();
      expect(t.kind).toBe('libipsec');
      await waitFor('the tunnel to h1', () => t.hubStates()[0]?.child === 'installed', 30_000, 50);
      const upMs = Date.now() - t0;
      expect(t.hubStates()[0]).toMatchObject({ hub: 'h1', ike: 'established', oip: OIP });
      await waitFor('the overlay route', async () => (await devNs.runner('ip', ['-json', 'route', 'show', 'proto', String(GATEWAY_ROUTE_PROTOCOL)])).stdout.includes(OIP), 5000, 50);
      const routes = JSON.parse((await devNs.runner('ip', ['-json', 'route', 'show', 'proto', String(GATEWAY_ROUTE_PROTOCOL)])).stdout) as { dst: string; dev: string; prefsrc: string }[];
      expect(routes).toEqual([expect.objectContaining({ dst: '10.10.0.0/24', dev: 'ipsec0', prefsrc: OIP })]);
      await waitFor('a ping to the hub\'s overlay address', () => ping(HUB_OVERLAY_ADDR), 10_000, 100);
      // Only the overlay goes into the tunnel: the rest of the node's traffic (WireGuard, etcd) is untouched,
      // although kernel-libipsec routes everything of the hub's 0.0.0.0/0 into its TUN device in charon's table.
      expect(JSON.parse((await devNs.runner('ip', ['-json', 'rule', 'show'])).stdout).map((r: { table: string }) => r.table)).toEqual(['local', 'main', 'default']);
      expect(JSON.parse((await devNs.runner('ip', ['-json', 'route', 'get', '198.51.100.77'])).stdout)[0]).toMatchObject({ dev: 'eth0' });
      const firstPacketMs = Date.now() - t0;
      const [state] = await t.refresh();
      expect(state!.bytesOut).toBeGreaterThan(0);
      expect(state!.bytesIn).toBeGreaterThan(0);

      // SD-EWAN's CNF restarts charon after every configuration change: every tunnel drops.
      await hub.stop();
      const down = Date.now();
      await startHub();
      await waitFor('the tunnel back after the hub restart', () => ping(HUB_OVERLAY_ADDR), 60_000, 100);
      const backMs = Date.now() - down;
      // A restart deletes the SAs at the device (close_action restart: at once); a crash says nothing.
      await hub.stop('SIGKILL');
      const crashed = Date.now();
      await startHub();
      await waitFor('the tunnel back after the hub crashed', () => ping(HUB_OVERLAY_ADDR), 60_000, 100);
      const afterCrashMs = Date.now() - crashed;
      console.log(`gateway IPsec: tunnel up ${upMs} ms after start, first packet through the hub ${firstPacketMs} ms; ` +
        `hub restarted: traffic back after ${backMs} ms; hub crashed and restarted: after ${afterCrashMs} ms`);
      expect(backMs).toBeLessThan(10_000);
      // DPD every 2 s, a silent hub given up after about 7 s, then a new IKE_SA: SD-EWAN's own settings take up to 195 s.
      expect(afterCrashMs).toBeLessThan(15_000);
    } catch (err) {
      // What charon did is the story of a failure here.
      console.log(readFileSync(join(dir, 'edge1', 'charon', 'charon.log'), 'utf8').split('\n').slice(-60).join('\n'));
      throw err;
    } finally {
      await t.stop();
    }
    // Stopping removes the routes it made.
    expect(JSON.parse((await devNs.runner('ip', ['-json', 'route', 'show', 'proto', String(GATEWAY_ROUTE_PROTOCOL)])).stdout)).toEqual([]);
  }, 120_000);
});
