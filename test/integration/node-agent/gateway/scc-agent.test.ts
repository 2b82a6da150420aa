// warren-agent (the built binary) registering its cluster with an SCC that fails it: down,
// answering 500 for an overlay it lacks, refusing with a conflicting registration. Each
// time the candidate says why in `warren-agent status` and its log, stays out of the
// election, and starts nothing: no charon, no NAT table, no connection at SCC. SCC back:
// it registers and becomes the gateway without a restart. The emulated SCC listens on a
// public site of the NAT lab, reached over the emulated internet as a real one would be.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acceptsConnections } from '../../../../lib/unix-socket.js';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { SccServer } from '../../../helpers/sdewan/scc-server.js';
import { waitFor } from '../../../helpers/sh.js';
import type { GatewayStatus } from '../../../../node-agent/status.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
`;

let lab: AgentLab;
let scc: SccServer;
let n: AgentNode;

const operator = (method: string, path: string, body?: unknown): Promise<unknown> => scc.operatorCall(method, path, body);

function configure(overlay: string): void {
  const kubeconfigFile = join(n.dir, 'sdewan.kubeconfig');
  writeFileSync(kubeconfigFile, KUBECONFIG);
  lab.configure(n, {
    gateway: {
      candidates: [n.name], device: 'site-c', hubs: [{ name: 'hub-1' }], overlayRanges: ['10.10.0.0/24'],
      scc: { url: scc.url, overlay, kubeconfigFile, timeoutSeconds: 5 },
    },
  });
}

async function gateway(): Promise<GatewayStatus> {
  return (await lab.status(n)).gateway!;
}

/** Nothing of the gateway on the node: no charon answering, no NAT table. */
async function nothingStarted(): Promise<void> {
  expect(await acceptsConnections(join(n.dir, 'gateway', 'charon', 'charon.vici'))).toBe(false);
  const table = await n.site.host.runner('nft', ['list', 'table', 'ip', 'warren_gateway'], { allowFailure: true });
  expect(table.exitCode).not.toBe(0);
}

beforeAll(async () => {
  lab = await AgentLab.create();
  const site = await lab.lab.addSite('public');
  scc = await SccServer.start({ host: site.publicAddress, port: 31298, netnsPath: site.host.path });
  await operator('POST', 'overlays', { metadata: { name: 'ovl' } });
  await operator('POST', 'overlays/ovl/proposals', { metadata: { name: 'p1' }, spec: { encryption: 'aes256', hash: 'sha256', dhGroup: 'modp4096' } });
  await operator('POST', 'overlays/ovl/ipranges', { metadata: { name: 'data' }, spec: { subnet: '10.10.0.0', minIp: 10, maxIp: 20 } });
  await operator('POST', 'provider/ipranges', { metadata: { name: 'control' }, spec: { subnet: '10.20.0.0', minIp: 10, maxIp: 20 } });
  // A hub SCC knows, at an address nothing answers: registration is what is under test here.
  await operator('POST', 'overlays/ovl/hubs', { metadata: { name: 'hub-1' }, spec: { publicIps: ['203.0.113.99'], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } });
  n = await lab.addNode('home-router', 'c1');
}, 180_000);

afterEach(async () => {
  if (n?.process) await lab.stop(n);
});

afterAll(async () => {
  await lab?.destroy();
  await scc?.destroy();
}, 120_000);

describe('warren-agent registering with an SCC that fails it', () => {
  it('answers 500 for a missing overlay: SCC\'s message in the status, out of the election, nothing started', async () => {
    configure('no-such-overlay');
    await lab.start(n);
    await waitFor('the registration error', async () => (await gateway()).error !== undefined, 30_000, 200);
    const g = await gateway();
    expect(g).toMatchObject({ role: 'standby', identity: 'pending' });
    expect(g.activeNode).toBeUndefined();
    expect(g.error).toContain(`POST ${scc.url}/scc/v1/overlays/no-such-overlay/certificates answered 500: Fail to find overlay`);
    expect(lab.log(n)).toContain('SD-EWAN registration with SCC failed');
    await nothingStarted();
  }, 90_000);

  it('refuses a device SCC has with another registration (409 that differs), and creates no connection', async () => {
    await operator('POST', 'overlays/ovl/devices', { metadata: { name: 'site-c' }, spec: { publicIps: ['198.51.100.7'], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } });
    configure('ovl');
    await lab.start(n);
    await waitFor('the registration error', async () => (await gateway()).error !== undefined, 30_000, 200);
    expect((await gateway()).error).toBe(`${scc.url}/scc/v1/overlays/ovl/devices/site-c exists and differs from the registration asked for: spec.publicIps is ["198.51.100.7"], asked []`);
    expect(await operator('GET', 'overlays/ovl/devices/site-c/connections')).toBeNull();
    await nothingStarted();
    await lab.stop(n);
    await operator('DELETE', 'overlays/ovl/devices/site-c');
  }, 90_000);

  it('waits out an SCC that is down, then registers and becomes the gateway without a restart', async () => {
    await scc.closeListener();
    configure('ovl');
    await lab.start(n);
    await waitFor('the registration error', async () => (await gateway()).error !== undefined, 30_000, 200);
    expect((await gateway()).error).toMatch(new RegExp(`^POST ${scc.url}/scc/v1/overlays/ovl/certificates: SCC unreachable: ECONNREFUSED .*\\(gave up after`));
    await nothingStarted();
    const back = Date.now();
    await scc.reopenListener();
    await waitFor('registration and election', async () => (await gateway()).role === 'active', 30_000, 200);
    console.log(`SCC back: registered and active after ${Date.now() - back} ms`);
    expect(await gateway()).toMatchObject({ role: 'active', activeNode: n.name, identity: 'scc' });
    expect((await gateway()).error).toBeUndefined();
    const connections = await operator('GET', 'overlays/ovl/devices/site-c/connections') as { information: { state: string } }[];
    expect(connections.map((c) => c.information.state)).toEqual(['Deployed']);
  }, 90_000);
});
