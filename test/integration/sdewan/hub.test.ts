// The emulated SD-EWAN data plane: two hubs and plain strongSwan devices, all real charons
// configured the way SD-EWAN's CNF configures strongSwan (stroke ipsec.conf through the
// starter, restarted after every CR), with certificates, data OIPs and the order of
// deployment taken from the emulated SCC over its REST API. Devices sit behind home-router
// NATs of the NAT lab; the hubs on public addresses. Overlay proposal aes256-sha256-modp4096.
//
// Order of the file: what a working overlay does (a, b), then refusal (d), then restarts
// (c) last, since a hub restart leaves SD-EWAN-configured devices without a tunnel for good.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil } from '../../../lib/poll.js';
import { NatLab } from '../../helpers/natlab.js';
import { waitFor } from '../../helpers/sh.js';
import type { Proposal } from '../../helpers/sdewan/cnf-config.js';
import { credentialsFromScc, type CnfCredentials } from '../../helpers/sdewan/cnf-ipsec.js';
import { PlainDevice } from '../../helpers/sdewan/device.js';
import { Hub } from '../../helpers/sdewan/hub.js';
import { issueCert, SccServer } from '../../helpers/sdewan/scc-server.js';

const OVERLAY = 'ovl';
const PROPOSAL: Proposal = { name: 'proposal1', encryption: 'aes256', hash: 'sha256', dhGroup: 'modp4096' };
// SCC's reachability check of a cluster's API passes (hooks absent); only the YAML shape matters.
const KUBECONFIG = Buffer.from(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
`).toString('base64');
/** Which hub each device is connected to, in SCC's order: hub 2's device first (see beforeAll). */
const PLACEMENT = [['d3', 'h2'], ['d1', 'h1'], ['d2', 'h1'], ['d4', 'h1']] as const;

let lab: NatLab;
let scc: SccServer;
let dir: string;
const hubs = new Map<string, Hub>();
const devices = new Map<string, PlainDevice>();
const times: string[] = [];

const api = (method: string, path: string, body?: unknown): Promise<any> => scc.operatorCall(method, path, body);

/** The certificate SCC issues for a hub or device, as the CNF decodes it from the CR (or from GET certificates). */
async function sccCredentials(name: string, clusterType: 'Hub' | 'Device'): Promise<CnfCredentials> {
  const created = await api('POST', `overlays/${OVERLAY}/certificates`, { metadata: { name }, spec: { isCA: false, clusterType } });
  return credentialsFromScc(created.data);
}

const hub = (name: string): Hub => hubs.get(name)!;
const device = (name: string): PlainDevice => devices.get(name)!;
const dev = (name: string): string => device(name).oip;
const hubHubSa = async (h: Hub) => (await h.sas()).find((s) => s.remoteId.startsWith('CN=hub-'));

/** The hub's CHILD_SA towards a device (0.0.0.0/0 === OIP/32), by the device's identity. */
async function hubChildOf(h: Hub, deviceName: string) {
  const sa = (await h.sas()).find((s) => s.remoteId === `CN=device-${deviceName}-cert` && s.state === 'ESTABLISHED');
  return sa?.children.find((c) => c.state === 'INSTALLED');
}

/** A start-to-finish failure story: each charon's last lines. */
function logs(): string {
  return [...hubs.values(), ...devices.values()].map((n) => `----- ${n.name}\n${n.log().split('\n').slice(-40).join('\n')}`).join('\n');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warren-sdewan-test-'));
  lab = await NatLab.create();
  // rsync deploying a hub-device connection: the hub's IpsecSite reaches the hub's CNF, which restarts strongSwan.
  scc = await SccServer.start({ hooks: { onHubDeviceConnection: (h, d, oip) => hub(h).addDevice(d, oip) } });
  await api('POST', 'overlays', { metadata: { name: OVERLAY }, spec: {} });
  await api('POST', `overlays/${OVERLAY}/proposals`, { metadata: { name: PROPOSAL.name }, spec: { encryption: PROPOSAL.encryption, hash: PROPOSAL.hash, dhGroup: PROPOSAL.dhGroup } });
  await api('POST', `overlays/${OVERLAY}/ipranges`, { metadata: { name: 'data' }, spec: { subnet: '10.10.0.0', minIp: 10, maxIp: 40 } });
  await api('POST', 'provider/ipranges', { metadata: { name: 'control' }, spec: { subnet: '10.20.0.0', minIp: 10, maxIp: 40 } });

  // A hub's CNF runs before SCC knows it (SCC probes its public IP); SCC meshes each new hub
  // with the existing ones at creation, the new one responding (rsync is played here).
  for (const name of ['h1', 'h2']) {
    const h = await Hub.start(lab, { name, credentials: await sccCredentials(name, 'Hub'), proposals: [PROPOSAL] });
    hubs.set(name, h);
    await api('POST', `overlays/${OVERLAY}/hubs`, { metadata: { name }, spec: { publicIps: [h.address], kubeConfig: KUBECONFIG } });
  }
  await hub('h2').connectHub(hub('h1'));

  // Mode-2 devices (behind NAT: no public IP), each connected to its hub through SCC, which
  // allocates the data OIP and deploys the hub's side (the hook). Each deployment restarts
  // that hub's strongSwan, so hub 2's device goes first: a restart of hub 2, the hub-hub
  // responder, deletes the hub-hub SA and hub 1 would not bring it back (see (c)); hub 1's
  // restarts that follow re-initiate it.
  const credentials = new Map<string, CnfCredentials>();
  for (const [d, h] of PLACEMENT) {
    credentials.set(d, await sccCredentials(d, 'Device'));
    await api('POST', `overlays/${OVERLAY}/devices`, { metadata: { name: d }, spec: { publicIps: [], kubeConfig: KUBECONFIG } });
    expect((await api('GET', `overlays/${OVERLAY}/devices/${d}`)).status.Data.RegStatus).toBe('success');
    await api('POST', `overlays/${OVERLAY}/hubs/${h}/devices`, { metadata: { name: `${h}-${d}` }, spec: { device: d, isDelegateHub: false } });
  }
  // Devices start once their hubs are configured, as after SCC's deployment settles. d4 is the
  // one device an operator edited by hand to re-initiate when the hub deletes its SA.
  const t0 = Date.now();
  await Promise.all(PLACEMENT.map(async ([d, h]) => {
    devices.set(d, await PlainDevice.start(lab, {
      name: d, hub: hub(h), credentials: credentials.get(d)!, proposals: [PROPOSAL], ...(d === 'd4' ? { handEdits: ['closeaction=restart'] } : {}),
    }));
  }));
  try {
    await Promise.all(PLACEMENT.map(([d]) => device(d).waitForOip(60_000)));
  } catch (err) {
    console.log(logs());
    throw err;
  }
  times.push(`4 devices behind NATs up with their OIPs ${Date.now() - t0} ms after their charons were started`);
}, 300_000);

afterAll(async () => {
  if (times.length) console.log(`SD-EWAN hub emulation, measured:\n  ${times.join('\n  ')}`);
  for (const d of devices.values()) await d.destroy();
  for (const h of hubs.values()) await h.destroy();
  await scc?.destroy();
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('an emulated SD-EWAN hub (stroke ipsec.conf as the CNF renders it) with plain strongSwan devices', () => {
  it('renders the hub-side conn exactly as the CNF does, with the machine-forced departures only', () => {
    const conf = hub('h1').ipsecConf();
    const oip = device('d1').oip;
    const conn = conf.slice(conf.indexOf(`conn h1d1-Connd1_${oip.replace(/\./g, '')}`)).split('\n\n')[0]!.split('\n');
    expect(conn.map((l) => l.trim())).toEqual([
      `conn h1d1-Connd1_${oip.replace(/\./g, '')}`, 'left=%any', 'right=%any', 'leftsubnet=0.0.0.0/0', 'ikelifetime=3h', 'lifetime=1h', 'margintime=9m',
      'keyingtries=%forever', 'dpdaction=restart', 'dpddelay=30s', 'leftauth=pubkey', 'rightauth=pubkey', 'leftcert=/etc/ipsec.d/certs/h1d1_public_0.pem',
      'leftsendcert=yes', 'rightsendcert=yes', `rightsourceip=${oip}`, 'auto=start', 'leftid="CN=hub-h1-cert"', 'rightid="CN=device-d1-cert"',
      expect.stringMatching(/^leftupdown=\/.+\/updown$/), 'keyexchange=ikev2', 'forceencaps=yes', 'esp=aes256-sha256-modp4096', 'ike=aes256-sha256-modp4096', 'type=tunnel',
    ]);
    expect(hub('h1').ipsecSecrets()).toContain('CN=hub-h1-cert CN=device-d1-cert  : RSA /etc/ipsec.d/private/h1d1_private_0.pem');
  });

  it('(a) gives each device on hub 1 the data OIP SCC allocated, the one its pool holds, and carries OIP-to-OIP ping and TCP through the hub', async () => {
    const leases = await hub('h1').leases();
    for (const d of ['d1', 'd2', 'd4']) {
      const allocated = (await api('GET', `overlays/${OVERLAY}/devices/${d}`)).status.DataIps['Hub.h1'];
      expect(allocated).toMatch(/^10\.10\.0\.\d+$/);
      expect(device(d).oip).toBe(allocated);
      expect(leases).toContainEqual({ pool: allocated, address: allocated, online: true, identity: `CN=device-${d}-cert` });
      expect(await hubChildOf(hub('h1'), d)).toMatchObject({ localTs: ['0.0.0.0/0'], remoteTs: [`${allocated}/32`] });
    }
    expect(new Set(['d1', 'd2', 'd4'].map(dev)).size).toBe(3);

    const before = [(await hubChildOf(hub('h1'), 'd1'))!.bytesIn, (await hubChildOf(hub('h1'), 'd2'))!.bytesOut];
    expect(await device('d1').ping(dev('d2'))).toBe(true);
    expect(await device('d2').ping(dev('d1'))).toBe(true);
    expect(await device('d1').request(dev('d2'), 'hello d2')).toBe('echo from d2\nhello d2\n');
    expect(await device('d2').request(dev('d1'), 'hello d1')).toBe('echo from d1\nhello d1\n');
    // The hub decrypted d1's packets and encrypted them again for d2: both of its CHILD_SAs counted them.
    const after = [(await hubChildOf(hub('h1'), 'd1'))!.bytesIn, (await hubChildOf(hub('h1'), 'd2'))!.bytesOut];
    expect(after[0]).toBeGreaterThan(before[0]!);
    expect(after[1]).toBeGreaterThan(before[1]!);
    // Only the OIP is protected (policy OIP/32 <-> 0/0): the device's own address does not reach the other device.
    const plain = await device('d1').host.exec('ping', ['-c', '1', '-W', '1', dev('d2')], { allowFailure: true });
    expect(plain.exitCode).not.toBe(0);
  }, 60_000);

  it('(b) carries a device on hub 2 to devices on hub 1 through the hub-hub tunnel and the routes SCC pushes', async () => {
    const link = await hubHubSa(hub('h1'));
    expect(link).toMatchObject({ conn: expect.stringMatching(/^h1h2-Connh2h1_/), state: 'ESTABLISHED', remoteId: 'CN=hub-h2-cert', remoteHost: hub('h2').address });
    const child = link!.children.find((c) => c.state === 'INSTALLED')!;
    expect(child).toMatchObject({ localTs: ['0.0.0.0/0'], remoteTs: ['0.0.0.0/0'] });
    expect(device('d3').oip).toBe((await api('GET', `overlays/${OVERLAY}/devices/d3`)).status.DataIps['Hub.h2']);
    // §2.6: every other hub routes a device's OIP towards the device's hub.
    expect((await hub('h2').site.host.runner('ip', ['route', 'show', dev('d1')])).stdout).toContain('dev ipsec0');
    expect((await hub('h1').site.host.runner('ip', ['route', 'show', dev('d3')])).stdout).toContain('dev ipsec0');

    const t0 = Date.now();
    expect(await device('d3').ping(dev('d1'))).toBe(true);
    const firstPingMs = Date.now() - t0;
    expect(await device('d1').ping(dev('d3'))).toBe(true);
    expect(await device('d3').request(dev('d1'), 'from hub 2')).toBe('echo from d1\nfrom hub 2\n');
    expect(await device('d2').request(dev('d3'), 'from hub 1')).toBe('echo from d3\nfrom hub 1\n');
    const carried = (await hubHubSa(hub('h1')))!.children.find((c) => c.state === 'INSTALLED')!;
    expect(carried.bytesIn).toBeGreaterThan(child.bytesIn);
    expect(carried.bytesOut).toBeGreaterThan(child.bytesOut);
    times.push(`hub 2's device to hub 1's device, first ping answered in ${firstPingMs} ms`);
  }, 60_000);

  it('(d) refuses a device that presents an SCC certificate for a name it has no connection for, and a forged certificate for a connected name', async () => {
    // mallory: a genuine overlay certificate, but SCC never connected mallory to hub 1.
    const mallory = await PlainDevice.start(lab, { name: 'mallory', hub: hub('h1'), credentials: await sccCredentials('mallory', 'Device'), proposals: [PROPOSAL] });
    devices.set('mallory', mallory);
    // forger: d1's name on a certificate from a CA of its own; it trusts the real CAs to authenticate the hub.
    const fakeCa = await issueCert(dir, 'fake-root', undefined, true);
    const forged = await issueCert(dir, 'device-d1-cert', fakeCa, false);
    const forger = await PlainDevice.start(lab, {
      name: 'forger', hub: hub('h1'), proposals: [PROPOSAL], localIdentifier: 'CN=device-d1-cert',
      credentials: { certPem: forged.certPem, keyPem: forged.keyPem, caPems: credentialsFromScc((await api('GET', `overlays/${OVERLAY}/certificates/device-d1-cert`)).data).caPems },
    });
    devices.set('forger', forger);
    const d1Before = (await hub('h1').sas()).find((s) => s.remoteId === 'CN=device-d1-cert')!.uniqueId;

    await waitFor('both refusals', () => mallory.log().includes('received AUTHENTICATION_FAILED notify error')
      && forger.log().includes('received AUTHENTICATION_FAILED notify error'), 30_000, 100);
    const h1 = hub('h1').log();
    expect(h1).toMatch(/no matching peer config found/);
    // The forged certificate chains to no trust anchor; charon then tries the genuine d1
    // certificate it cached from d1's own IKE_AUTH, and the forger's signature fails it.
    expect(h1).toMatch(/issuer is "CN=fake-root"[\s\S]*signature validation failed, looking for another key/);
    expect(await mallory.installedOip()).toBeUndefined();
    expect(await forger.installedOip()).toBeUndefined();
    const sas = await hub('h1').sas();
    expect(sas.filter((s) => s.remoteId === 'CN=device-mallory-cert' && s.state === 'ESTABLISHED')).toEqual([]);
    // The forger did not replace d1's IKE_SA (uniqueids) nor take its OIP.
    expect(sas.filter((s) => s.remoteId === 'CN=device-d1-cert').map((s) => [s.uniqueId, s.remoteVips])).toEqual([[d1Before, [dev('d1')]]]);
    expect(await device('d1').ping(dev('d2'))).toBe(true);
    for (const n of ['mallory', 'forger']) {
      await device(n).destroy();
      devices.delete(n);
    }
  }, 90_000);

  it('(c) after a hub restart, only a device that re-initiates on the hub\'s DELETE comes back; SCC\'s own device config and the hub-hub link do not', async () => {
    const t0 = Date.now();
    await hub('h1').restart();
    const restartMs = Date.now() - t0;
    try {
      // d4: SCC's config plus closeaction=restart. Back with its OIP, then through the re-initiated hub-hub tunnel to d3.
      // A plain strongSwan device has two races of its own here, not the hub's doing: its
      // re-initiation can reach the hub before its conns are loaded (NO_PROPOSAL_CHOSEN, and
      // charon gives up), or the old IKE_SA's removal of the VIP lands after the new one
      // installed it. Either way d4 is reconnected by hand, as its operator would, and the
      // figure says so; the hub's part (the same OIP again, the hub-hub link) is checked alike.
      let d4Race = '';
      if (!(await pollUntil(async () => (await device('d4').installedOip()) === dev('d4'), 20_000, 100))) {
        d4Race = ` (not back by itself within 20 s, SA ${(await device('d4').negotiatedOip()) ?? 'none'}: reconnected by hand)`;
        await device('d4').reconnect();
        await waitFor('d4 to install its OIP after a reconnect', async () => (await device('d4').installedOip()) === dev('d4'), 30_000, 100);
      }
      const d4BackMs = Date.now() - t0;
      await waitFor('d4 reaching d3 on hub 2 again', () => device('d4').ping(dev('d3')), 60_000, 0);
      const d4ToD3Ms = Date.now() - t0;
      expect(await device('d4').request(dev('d3'), 'after the restart')).toBe('echo from d3\nafter the restart\n');
      times.push(`hub 1 restarted in ${restartMs} ms; d4 (closeaction=restart) had its tunnel and OIP back ${d4BackMs} ms after the restart began${d4Race}, ` +
        `reached d3 on hub 2 again after ${d4ToD3Ms} ms (hub 1 re-initiates the hub-hub link: auto=start)`);

      // Hub 2 is the hub-hub responder: its restart deletes the link's SA at hub 1, which keeps no SA to probe and never re-initiates.
      const t2 = Date.now();
      await hub('h2').restart();
      await waitFor('hub 1 to process hub 2\'s DELETE', async () => (await hubHubSa(hub('h1'))) === undefined, 10_000, 50);
      // Longer than dpddelay (30 s), the only timer that could have revived an SA that still existed.
      await new Promise((r) => setTimeout(r, 35_000 - (Date.now() - t2)));
      for (const d of ['d1', 'd2', 'd3']) {
        expect(device(d).log()).toContain('received DELETE for IKE_SA');
        expect(await device(d).sas()).toEqual([]);
      }
      expect(await hubHubSa(hub('h1'))).toBeUndefined();
      expect(await hubHubSa(hub('h2'))).toBeUndefined();
      expect(await device('d4').ping(dev('d3'))).toBe(false);
      // Hub 1 itself was untouched by hub 2's restart: d4 still reaches it.
      expect(await device('d4').installedOip()).toBe(dev('d4'));
      expect(await device('d4').ping(hub('h1').address)).toBe(true);
      times.push(`after hub 1's restart, d1 and d2 (SCC's config: closeaction unset) had no SA 35+ s later; after hub 2's restart, ` +
        'd3 and the hub-hub link had none either (hub 1 received the DELETE and does not re-initiate)');
    } catch (err) {
      console.log(logs());
      throw err;
    }
  }, 150_000);
});
