// The demo's second half: two Warren clusters joined through an SD-EWAN hub. SCC (emulated,
// on the lab's internet), hub h1 (strongSwan configured as SD-EWAN's CNF configures it),
// and two clusters of two nodes behind NATs, each registering itself with SCC from its
// agent config alone (test/helpers/sdewan/sdewan-lab.ts builds it all, as for the tests
// and the bench). A pod in one cluster talks to a service the other exports at its OIP;
// the other cluster reaches the first's API; then the active gateway of one is killed.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { WARREN_AGENT, type AgentNode } from '../../test/helpers/agent-lab.js';
import { outage } from '../../test/helpers/sdewan/outage.js';
import { answers, greeting, OVERLAY, probeAround, SdewanLab } from '../../test/helpers/sdewan/sdewan-lab.js';
import { check, show, step } from './report.js';
import { mustVanish, onTeardown } from './teardown.js';

const SERVICE_PORT = 8080;
const API_PORT = 6443;

export async function sdewanDemo(): Promise<void> {
  step('Part two: an SD-EWAN overlay. Its controller (SCC, emulated) and hub h1 (strongSwan as SD-EWAN\'s CNF runs it) on the internet');
  const sd = await SdewanLab.create(['h1']);
  onTeardown('the SD-EWAN lab (SCC, hub, clusters)', () => sd.destroy());
  mustVanish('the SD-EWAN lab\'s directory', sd.dir);
  console.log(`    SCC ${sd.scc.url}, overlay "${OVERLAY}" with proposal aes256-sha256-modp4096 and data OIPs 10.10.0.10-40; hub h1 at ${sd.hub('h1').address}`);

  step('Two more Warren clusters, "east" and "west", two nodes each behind NATs, each with its own etcd');
  const east = await sd.cluster({ device: 'east', hubs: ['h1'], nodes: [['home-router', 'e1'], ['masquerade', 'e2']], podmanOn: 'e1',
    exports: (n) => [{ port: API_PORT, to: `${n[0]!.hostAddress}:${API_PORT}` }] });
  const west = await sd.cluster({ device: 'west', hubs: ['h1'], nodes: [['home-router', 'w1'], ['symmetric', 'w2']],
    exports: (n) => [{ port: API_PORT, to: `${n[0]!.hostAddress}:${API_PORT}` }, { port: SERVICE_PORT, to: `${n[1]!.hostAddress}:${SERVICE_PORT}` }] });
  for (const c of [east, west]) for (const n of c.nodes) mustVanish(`${n.name}'s agent`, undefined, `${n.dir}/agent.yaml`);
  console.log('    west\'s agent config, the gateway section (both nodes alike): SCC issues the certificate, the OIP and the hub address');
  const cfg = JSON.parse(readFileSync(`${west.nodes[0]!.dir}/agent.yaml`, 'utf8')) as { gateway: unknown };
  show(YAML.stringify({ gateway: cfg.gateway }));

  step('Start the agents: in each cluster the candidates register with SCC, one is elected, it brings up IPsec to h1');
  const t0 = Date.now();
  await sd.start(east);
  const westGw = await sd.start(west);
  // west's connection restarted h1 (SD-EWAN's CNF does on every change): east's tunnel comes back by itself.
  await sd.activeWithHubs(east, ['h1'], 60_000);
  console.log(`    both clusters have their tunnel ${((Date.now() - t0) / 1000).toFixed(1)} s after their agents were started`);
  const [oipEast, oipWest] = [await sd.oip('east', 'h1'), await sd.oip('west', 'h1')];
  console.log(`    west$ warren-agent status --socket ${westGw.socket}`);
  const status = (await westGw.site.host.exec(WARREN_AGENT, ['status', '--socket', westGw.socket])).stdout;
  show(status.split('\n').filter((l) => /SD-EWAN|HUB|h1 /.test(l)).join('\n'));
  check(status.includes(`h1   ${oipWest}`) || status.includes(oipWest), `west's gateway ${westGw.name} holds the tunnel to h1 at OIP ${oipWest}`);
  const devices = await Promise.all(['east', 'west'].map(async (d) => (await sd.api('GET', `overlays/${OVERLAY}/devices/${d}`)) as { status: { Data: { RegStatus: string }; DataIps: Record<string, string> } }));
  show(devices.map((d, i) => `SCC: device ${['east', 'west'][i]} RegStatus ${d.status.Data.RegStatus}, DataIps ${JSON.stringify(d.status.DataIps)}`).join('\n'));
  check(devices.every((d) => d.status.Data.RegStatus === 'success'), 'SCC lists both clusters as registered devices');

  step(`A pod in east (podman, warren-cni) connects to the service west exports at its OIP (${oipWest}:${SERVICE_PORT})`);
  const [w1, w2] = west.nodes as [AgentNode, AgentNode];
  const e1 = east.nodes[0]!;
  for (const [n, port, name] of [[w2, SERVICE_PORT, 'a service in west'], [w1, API_PORT, 'west\'s API'], [e1, API_PORT, 'east\'s API']] as const) {
    await (await sd.worker(n.site.host)).call('serve', n.hostAddress, port, `${name} sees {peer}`);
  }
  const pod = await sd.worker({ name: 'pod-demo', path: await sd.pod(east, 'pe') });
  const answer = await greeting(pod, oipWest, SERVICE_PORT);
  show(answer);
  check(answer === `a service in west sees ${oipEast}`, `it answers, and sees east as one device behind its OIP ${oipEast}`);

  step(`And back: a node of west connects to east's Kubernetes API port at east's OIP (${oipEast}:${API_PORT})`);
  const back = await greeting(await sd.worker(w1.site.host), oipEast, API_PORT);
  show(back);
  check(back === `east's API sees ${oipWest}`, 'it answers, and sees west\'s OIP');

  step(`west's active gateway agent (${westGw.name}) is killed: the standby takes over with the same identity and OIP`);
  const { record, at } = await probeAround(pod, oipWest, westGw === w2 ? API_PORT : SERVICE_PORT, async () => {
    westGw.process!.kill('SIGKILL');
    await westGw.exited;
    westGw.process = undefined;
  }, answers(pod, oipWest, westGw === w2 ? API_PORT : SERVICE_PORT));
  const o = outage(record, at);
  const now = await sd.activeWithHubs(west, ['h1'], 30_000);
  console.log(`    a connection from the pod every 100 ms: ${o.failed} of ${record.length} failed, traffic back after ${(o.ms / 1000).toFixed(1)} s`);
  // The bound is the demo's, loose on purpose (a busy 2-core machine); the figures are in make bench.
  check(now !== westGw && !o.ongoing && o.ms < 30_000, `${now.name} is west's gateway now; the pod's connections to west work again`);
}
