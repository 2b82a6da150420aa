// End to end: three nodes behind three different NATs, each with its own OVS, podman,
// warren-configgen, warren-cni and warren-agent. A pod on node A reaches a pod on node C
// by its own address, through the encrypted overlay; throughput and latency recorded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { startOvs, type OvsInstance } from '../../../helpers/ovs.js';
import { Podman } from '../../../helpers/podman.js';
import { run, waitFor } from '../../../helpers/sh.js';
import { iperfClient } from '../../../helpers/iperf.js';
import { inNetns } from '../../../../lib/netns.js';
import { execRunner } from '../../../../lib/runner.js';

let lab: AgentLab;
const ovs: OvsInstance[] = [];
const podmen: Podman[] = [];
let a: AgentNode;
let c: AgentNode;

async function node(kind: Parameters<AgentLab['addNode']>[0], name: string): Promise<{ node: AgentNode; podman: Podman }> {
  let instance: OvsInstance | undefined;
  const n = await lab.addNode(kind, name, async (site) => {
    instance = await startOvs(site.host);
    ovs.push(instance);
    return ['--ovsdb', instance.db];
  });
  const conflist = JSON.parse(readFileSync(join(n.dir, 'net.d', '10-warren.conflist'), 'utf8')) as { name: string };
  const podman = await Podman.create(n.site.host, { [conflist.name]: conflist });
  podmen.push(podman);
  await lab.start(n);
  return { node: n, podman };
}

async function podAddress(p: Podman, name: string): Promise<string> {
  const out = (await p.exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)![1]!;
}

async function sandbox(p: Podman, name: string): Promise<string> {
  return (await p.podman(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', name])).stdout.trim();
}

beforeAll(async () => {
  lab = await AgentLab.create();
}, 120_000);

afterAll(async () => {
  for (const p of podmen) await p.destroy();
  await lab?.destroy();
  for (const o of ovs) await o.stop();
}, 120_000);

describe('a cluster across NATs', () => {
  it('lets a pod on a node behind a home router reach a pod on a node behind a double NAT', async () => {
    const na = await node('home-router', 'edge-a');
    await node('symmetric', 'edge-b');
    const nc = await node('double-nat', 'edge-c');
    a = na.node;
    c = nc.node;
    await na.podman.run('pa', 'warren', ['sleep', '600']);
    await nc.podman.run('pc', 'warren', ['sleep', '600']);
    const [ipA, ipC] = [await podAddress(na.podman, 'pa'), await podAddress(nc.podman, 'pc')];
    expect(ipA.startsWith(a.podSubnet.split('.').slice(0, 3).join('.'))).toBe(true);

    // Pod to pod by their own addresses (no NAT inside the overlay), pod to node overlay address.
    await waitFor('pod A to reach pod C', async () => (await na.podman.exec('pa', ['ping', '-c', '1', '-W', '1', ipC], true)).exitCode === 0, 60_000, 200);
    expect((await na.podman.exec('pa', ['ping', '-c', '1', '-W', '2', c.hostAddress], true)).exitCode).toBe(0);

    // What pod C sees as the source: pod A's own address.
    const netnsC = await sandbox(nc.podman, 'pc');
    const netnsA = await sandbox(na.podman, 'pa');
    const server = run('nsenter', [`--net=${netnsC}`, 'iperf3', '-s', '-1', '-p', '5201', '--json']);
    await waitFor('iperf3 server', async () => (await run('nsenter', [`--net=${netnsC}`, 'ss', '-ltn'])).includes(':5201'), 10_000);
    const client = await iperfClient(inNetns(execRunner, netnsA), ipC);
    const serverReport = JSON.parse(await server) as { start: { accepted_connection: { host: string } } };
    expect(serverReport.start.accepted_connection.host).toBe(ipA);
    const ping = await run('nsenter', [`--net=${netnsA}`, 'ping', '-c', '10', '-i', '0.2', '-q', ipC]);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping)?.[1];
    const status = await lab.status(a);
    console.log([
      `pod ${ipA} on ${a.name} (home router) -> pod ${ipC} on ${c.name} (double NAT)`,
      `  iperf3 TCP: ${client.gbps.toFixed(2)} Gbit/s; ping avg ${rtt} ms`,
      ...status.peers.map((p) => `  ${a.name} -> ${p.node}: ${p.path} via ${p.endpoint}`),
    ].join('\n'));
    expect(status.peers.find((p) => p.node === c.name)?.path).toBe('direct');
    expect(status.peers.find((p) => p.node === 'edge-b')?.path).toBe('relayed');
  }, 240_000);
});
