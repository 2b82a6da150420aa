// The TURN relay over each transport (issue 11 item 1), in the NAT lab with the real
// binaries: three home-router nodes relayed to one symmetric-NAT node (a pair that has no
// direct path), the first on a site that lets everything out (its relay on UDP), the
// second on one that drops UDP (its relay on TCP), the third on one that lets only TCP 443
// out (its relay on TLS). The far leg is the symmetric node's own UDP relay every time, so
// the three differ only in how the near node reaches coturn. iperf3 TCP one stream through
// the host overlay and ping, in rounds whose order rotates, medians; ratios against the UDP
// relay of the same run.
//
// Run alone with `npx tsx bench/relay.ts`, or through `make bench`.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execRunner } from '../lib/runner.js';
import { inNetns } from '../lib/netns.js';
import { AgentLab, type AgentNode } from '../test/helpers/agent-lab.js';
import { iperfClient } from '../test/helpers/iperf.js';
import { waitFor } from '../test/helpers/sh.js';
import { percentile, ratio } from './stats.js';
import { pingAvg, PINGS } from './agent.js';

const ROUNDS = Number(process.env.WARREN_BENCH_RELAY_ROUNDS ?? 5);
const IPERF_SECONDS = 5;
const IPERF_PORT = 5211;
const TRANSPORTS = ['udp', 'tcp', 'tls'] as const;
type Transport = (typeof TRANSPORTS)[number];

export async function benchRelay(): Promise<Record<Transport, { gbps: number[]; pingMs: number[] }>> {
  const lab = await AgentLab.create();
  const stops: (() => void)[] = [];
  try {
    const front = await lab.lab.frontDoor443({ address: lab.etcd.host, port: lab.etcd.clientPort });
    const far = await lab.addNode('symmetric', 'rl-far');
    const near: Record<Transport, AgentNode> = {
      udp: await lab.addNode('home-router', 'rl-udp'),
      tcp: await lab.addNode('home-router', 'rl-tcp', undefined, { on: { site: await lab.lab.addSite('home-router', { egress: 'no-udp' }), host: 0 } }),
      tls: await lab.addNode('home-router', 'rl-tls', undefined,
        { on: { site: await lab.lab.addSite('home-router', { egress: 'tcp443' }), host: 0 }, etcdEndpoint: `http://${front}` }),
    };
    await Promise.all([far, ...Object.values(near)].map((n) => lab.start(n)));
    for (const t of TRANSPORTS) {
      await waitFor(`${near[t].name} relayed over ${t} to ${far.name}`, async () => {
        const s = await lab.status(near[t]);
        return s.relayTransport === t && s.peers.find((p) => p.node === far.name)?.path === 'relayed' && lab.ping(near[t], far.hostAddress);
      }, 60_000, 200);
    }
    const log = openSync(join(lab.dir, 'iperf3.log'), 'a');
    const server = spawn('ip', ['netns', 'exec', far.site.host.name, 'iperf3', '-s', '-p', String(IPERF_PORT)], { stdio: ['ignore', log, log] });
    closeSync(log);
    stops.push(() => server.kill());
    await waitFor('iperf3 server', async () => (await far.site.host.exec('ss', ['-Hltn'])).stdout.includes(`:${IPERF_PORT}`), 10_000);

    const figures = Object.fromEntries(TRANSPORTS.map((t) => [t, { gbps: [] as number[], pingMs: [] as number[] }])) as Record<Transport, { gbps: number[]; pingMs: number[] }>;
    for (let round = 0; round < ROUNDS; round++) {
      const order = [...TRANSPORTS.slice(round % 3), ...TRANSPORTS.slice(0, round % 3)];
      for (const t of order) {
        const r = await iperfClient(inNetns(execRunner, near[t].site.host.path), far.hostAddress, { port: IPERF_PORT, seconds: IPERF_SECONDS });
        figures[t].gbps.push(r.gbps);
        figures[t].pingMs.push(await pingAvg(near[t].site.host.path, far.hostAddress));
      }
    }
    const paths = await Promise.all(TRANSPORTS.map(async (t) => (await lab.status(near[t])).peers.find((p) => p.node === far.name)));
    const mbit = (t: Transport) => percentile(figures[t].gbps, 50) * 1000;
    const ms = (t: Transport) => percentile(figures[t].pingMs, 50);
    console.log(`\nwarren-agent: the TURN relay over each transport, home-router node -> symmetric-NAT node through coturn; ` +
      `iperf3 TCP 1 stream ${IPERF_SECONDS} s and ping ${PINGS} x 0.1 s (as bench/agent.ts), ${ROUNDS} rounds in rotating order, medians`);
    for (const [i, t] of TRANSPORTS.entries()) {
      console.log(`  relay over ${t.toUpperCase().padEnd(4)} (path ${paths[i]?.path} via ${paths[i]?.via}) ${mbit(t).toFixed(0).padStart(5)} Mbit/s ` +
        `(rounds ${figures[t].gbps.map((g) => (g * 1000).toFixed(0)).join(', ')})   ping ${ms(t).toFixed(2)} ms` +
        (t === 'udp' ? '' : `   throughput / UDP relay ${ratio(mbit(t), mbit('udp'))}, ping / UDP relay ${ratio(ms(t), ms('udp'))}`));
    }
    return figures;
  } finally {
    for (const stop of stops) stop();
    await lab.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await benchRelay();
}
