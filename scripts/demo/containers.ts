// Containers on a node's runtime (podman executes warren-cni), and what the demo asks of them.
import { execa } from 'execa';
import { run, waitFor } from '../../test/helpers/sh.js';
import { iperfClient } from '../../test/helpers/iperf.js';
import { inNetns } from '../../lib/netns.js';
import { execRunner } from '../../lib/runner.js';
import type { ClusterNode } from './cluster.js';
import { check, show } from './report.js';
import { mustVanish } from './teardown.js';

export interface Pod { node: ClusterNode; name: string; ip: string; cidr: string; netns: string }

/** Starts a busybox container on the node's network (podman calls warren-cni ADD). */
export async function startPod(node: ClusterNode, name: string): Promise<Pod> {
  node.pods.push(await node.podman.run(name, node.network, ['sleep', '3600']));
  const netns = (await node.podman.podman(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', name])).stdout.trim();
  mustVanish(`${node.name} container ${name}'s netns`, netns);
  const out = (await node.podman.exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  const cidr = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out)?.[1];
  if (!cidr) throw new Error(`${name} has no IPv4 address on eth0: ${out}`);
  return { node, name, ip: cidr.split('/')[0]!, cidr, netns };
}

export const sh = (pod: Pod, script: string) => pod.node.podman.exec(pod.name, ['sh', '-c', script], true);
const prompt = (pod: Pod, command: string, comment = ''): void =>
  console.log(`    ${pod.node.name}$ podman exec ${pod.name} ${command}${comment ? `        # ${comment}` : ''}`);

/** One ping at a time until one is answered: the agents may still be setting the path up. */
export async function reachable(from: Pod, to: string, timeoutMs: number): Promise<boolean> {
  return waitFor(`${from.name} to reach ${to}`, async () => (await sh(from, `ping -c 1 -W 1 ${to}`)).exitCode === 0, timeoutMs, 200)
    .then(() => true, () => false);
}

export async function ping(from: Pod, to: string, what: string): Promise<void> {
  prompt(from, `ping -c 5 -i 0.2 ${to}`, what);
  const r = await from.node.podman.exec(from.name, ['ping', '-c', '5', '-i', '0.2', '-W', '2', to], true);
  show(r.stdout.split('\n').filter((l) => /transmitted|round-trip/.test(l)).join('\n'));
  check(r.exitCode === 0, `${from.name} reaches ${what} (${to})`);
}

/** Connects to a who-am-i server (cluster.ts) and returns its answer. */
export async function whoAmI(from: Pod, to: string): Promise<string> {
  prompt(from, `nc ${to} 8080`);
  const answer = (await sh(from, `nc -w 2 ${to} 8080 </dev/null`)).stdout.trim();
  show(answer);
  return answer;
}

/** iperf3 (the node's binary, inside the pods' namespaces) from one pod to another for `seconds`. */
export async function iperf(from: Pod, to: Pod, seconds: number): Promise<{ mbps: number; source: string }> {
  console.log(`    $ nsenter --net=<${to.name}> iperf3 -s -1  &&  nsenter --net=<${from.name}> iperf3 -c ${to.ip} -t ${seconds}`);
  const server = execa('nsenter', [`--net=${to.netns}`, 'iperf3', '-s', '-1', '-p', '5201', '--json']);
  try {
    await waitFor('iperf3 server', async () => (await run('nsenter', [`--net=${to.netns}`, 'ss', '-ltn'])).includes(':5201'), 10_000);
    const client = await iperfClient(inNetns(execRunner, from.netns), to.ip, { seconds });
    const report = JSON.parse((await server).stdout) as { start: { accepted_connection: { host: string } } };
    return { mbps: client.gbps * 1e3, source: report.start.accepted_connection.host };
  } finally {
    // A server nobody connected to must not outlive the demo.
    server.kill();
    await server.catch(() => undefined);
  }
}
