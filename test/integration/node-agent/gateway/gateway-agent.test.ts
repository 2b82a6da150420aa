// warren-agent's SD-EWAN gateway role, end to end with the built binary: two nodes of one
// cluster behind different NATs, both gateway candidates; a real charon on the emulated
// internet standing in for an SD-EWAN hub (configured as SCC's IpsecSite CR makes the CNF
// configure it: responder for %any, the device's data OIP as its only pool address,
// 0.0.0.0/0 on its side); certificates as SCC issues them. One node is elected, holds the
// IPsec tunnel with the OIP, and every node reaches the overlay through it; killed, the
// other takes over.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptsConnections } from '../../../../lib/unix-socket.js';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import type { Charon } from '../../../helpers/charon.js';
import { startResponderHub } from '../../../helpers/sdewan/responder-hub.js';
import { issueCert, SccPki } from '../../../helpers/sdewan/scc-server.js';
import { run, waitFor } from '../../../helpers/sh.js';

const PROPOSALS = ['aes256-sha256-modp4096'];
const OVERLAY = '10.200.0.0/24';
const OIP = '10.200.0.5';
const HUB_OVERLAY_ADDRESS = '10.200.0.1';
const ECHO_PORT = 7000;
const API_PORT = 6443;

let lab: AgentLab;
let pki: SccPki;
let a: AgentNode;
let b: AgentNode;
let hub: Charon;
let hubAddress: string;
let hubEcho: ChildProcess | undefined;
let hubNsName: string;

function withGateway(node: AgentNode, files: { cert: string; key: string; cas: string[] }): void {
  const path = join(node.dir, 'agent.yaml');
  const config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({
    ...config,
    gateway: {
      candidates: [a.name, b.name], device: 'site-a', certFile: files.cert, keyFile: files.key, caFiles: files.cas,
      hubs: [{ name: 'hub-1', address: hubAddress }], proposals: PROPOSALS, overlayRanges: [OVERLAY],
      // The Kubernetes API's port, as SD-EWAN expects of a device: here a TCP server on node a.
      exports: [{ port: API_PORT, to: `${a.hostAddress}:${API_PORT}` }],
    },
  }, null, 2));
}

const ping = async (from: AgentNode, to: string): Promise<boolean> =>
  (await from.site.host.exec('ping', ['-c', '1', '-W', '1', to], { allowFailure: true })).exitCode === 0;

/** A TCP connection from the node to a server on the hub that answers with the peer address it sees. */
async function sourceSeenByHub(from: AgentNode): Promise<string> {
  const r = await from.site.host.exec('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/${HUB_OVERLAY_ADDRESS}/${ECHO_PORT} && cat <&3`], { allowFailure: true });
  return r.stdout.trim() || `nothing (exit ${r.exitCode}: ${r.stderr.trim()})`;
}

/** A TCP connection from the hub's overlay address to `address:port`: what the server there answered. */
async function hubConnects(address: string, port: number): Promise<string> {
  const script = `const s = require('net').connect({ host: '${address}', port: ${port}, localAddress: '${HUB_OVERLAY_ADDRESS}' });
let out = ''; s.on('data', (d) => (out += d)); s.on('end', () => console.log(out.trim())); s.on('error', () => process.exit(1));`;
  const r = await run('timeout', ['5', 'ip', 'netns', 'exec', hubNsName, process.execPath, '-e', script], { allowFailure: true });
  return r.trim();
}

async function roles(): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const n of [a, b]) {
    if (!n.process) continue;
    const g = (await lab.status(n)).gateway;
    out[n.name] = g ? `${g.role}:${g.activeNode ?? 'none'}` : undefined;
  }
  return out;
}

beforeAll(async () => {
  lab = await AgentLab.create();
  pki = await SccPki.create();
  const dir = join(lab.dir, 'sdewan');
  mkdirSync(dir, { recursive: true });
  const overlayCa = await issueCert(dir, 'overlay-1-cert', pki.root, true);
  const device = await issueCert(dir, 'device-site-a-cert', overlayCa, false);
  const hubSite = await lab.lab.addSite('public');
  hubAddress = hubSite.hostAddress;
  hubNsName = hubSite.host.name;
  await run('ip', ['-n', hubSite.host.name, 'addr', 'add', `${HUB_OVERLAY_ADDRESS}/32`, 'dev', 'lo']);
  hub = await startResponderHub({ dir, ns: hubSite.host, hub: 'hub-1', device: 'site-a', oip: OIP, proposals: PROPOSALS, root: pki.root, overlayCa });
  // Answers every connection with the address it came from; ends with the lab's namespace.
  hubEcho = spawn('ip', ['netns', 'exec', hubSite.host.name, process.execPath, '-e',
    `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${ECHO_PORT}, '${HUB_OVERLAY_ADDRESS}')`], { stdio: 'ignore' });
  a = await lab.addNode('home-router', 'gw-a');
  b = await lab.addNode('masquerade', 'gw-b');
  const files = { cert: device.certFile, key: device.keyFile, cas: [pki.root.certFile, overlayCa.certFile] };
  for (const n of [a, b]) withGateway(n, files);
  // As on a host that keeps forwarding off (a new namespace copies the host's value): the
  // gateway must turn it on itself.
  for (const n of [a, b]) await n.site.host.runner('sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
}, 180_000);

afterAll(async () => {
  hubEcho?.kill();
  await lab?.destroy();
  await hub?.stop();
  pki?.destroy();
}, 120_000);

describe('warren-agent as an SD-EWAN device', () => {
  it('elects one gateway, which gets the OIP from the hub; every node reaches the overlay through it', async () => {
    const t0 = Date.now();
    await Promise.all([lab.start(a), lab.start(b)]);
    await waitFor('one active gateway both agree on', async () => {
      const r = await roles();
      const active = Object.entries(r).filter(([, v]) => v?.startsWith('active:')).map(([k]) => k);
      return active.length === 1 && Object.values(r).every((v) => v?.endsWith(`:${active[0]}`));
    }, 30_000, 200);
    const active = (await lab.status(a)).gateway!.activeNode === a.name ? a : b;
    const other = active === a ? b : a;
    await waitFor('the tunnel to hub-1', async () => (await lab.status(active)).gateway!.hubs[0]?.child === 'installed', 30_000, 200);
    expect((await lab.status(active)).gateway!.hubs[0]).toMatchObject({ hub: 'hub-1', ike: 'established', oip: OIP });
    expect((await lab.status(other)).gateway).toMatchObject({ role: 'standby', activeNode: active.name, hubs: [] });
    await waitFor('the active node to reach the hub through IPsec', () => ping(active, HUB_OVERLAY_ADDRESS), 20_000, 200);
    const activeMs = Date.now() - t0;
    // The other node's traffic crosses the cluster's WireGuard to the gateway and leaves as the OIP.
    await waitFor('the other node to reach the hub through the gateway', () => ping(other, HUB_OVERLAY_ADDRESS), 20_000, 200);
    expect(lab.log(active)).toContain('IP forwarding was off on this node: turned on');
    console.log(`gateway: agents started to first packet through the hub ${activeMs} ms (active ${active.name}), from the other node ${Date.now() - t0} ms`);
    // What the far side sees: the cluster is one device behind its OIP, whichever node sent.
    for (const n of [active, other]) expect(await sourceSeenByHub(n)).toBe(OIP);
    // And the other way: OIP:6443 reaches the exported server on node a (through the
    // gateway, whichever node that is), which sees the hub's own address.
    const apiServer = spawn('ip', ['netns', 'exec', a.site.host.name, process.execPath, '-e',
      `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${API_PORT}, '${a.hostAddress}')`], { stdio: 'ignore' });
    try {
      await waitFor('OIP:6443 to answer from the hub', async () => (await hubConnects(OIP, API_PORT)) === HUB_OVERLAY_ADDRESS, 10_000, 200);
    } finally {
      apiServer.kill();
    }
  }, 120_000);

  it('fails over when the active gateway\'s agent is killed: the standby brings the tunnel up with the same identity', async () => {
    const active = (await lab.status(a)).gateway!.activeNode === a.name ? a : b;
    const other = active === a ? b : a;
    active.process!.kill('SIGKILL');
    await active.exited;
    active.process = undefined;
    const killed = Date.now();
    await waitFor('the standby to take over and reach the hub', () => ping(other, HUB_OVERLAY_ADDRESS), 30_000, 100);
    const backMs = Date.now() - killed;
    expect((await lab.status(other)).gateway).toMatchObject({ role: 'active', activeNode: other.name, hubs: [expect.objectContaining({ oip: OIP })] });
    // The killed agent's charon went with it (parent-death signal): no second holder of the device's SAs.
    expect(await acceptsConnections(join(active.dir, 'gateway', 'charon', 'charon.vici'))).toBe(false);
    console.log(`gateway failover: active agent killed, traffic through the other node after ${backMs} ms`);
    expect(backMs).toBeLessThan(15_000);
    await lab.start(active);
  }, 120_000);
});
