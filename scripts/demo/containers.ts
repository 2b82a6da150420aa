// Containers on a node's runtime, and what the demo asks of them.
import { show, check } from './report.js';
import type { RuntimeNode } from './emulated-node.js';

export const startPod = async (node: RuntimeNode, name: string, command: string[]): Promise<void> =>
  void node.pods.push(await node.podman.run(name, node.network, command));

export const sh = async (node: RuntimeNode, pod: string, script: string) => node.podman.exec(pod, ['sh', '-c', script], true);

/** The container's eth0 IPv4 address with its prefix length, e.g. 10.244.7.2/24. */
export async function addressOf(node: RuntimeNode, pod: string): Promise<string> {
  const out = (await node.podman.exec(pod, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout;
  const m = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(out);
  if (!m) throw new Error(`${pod} has no IPv4 address on eth0: ${out}`);
  return m[1]!;
}

export async function ping(node: RuntimeNode, from: string, to: string, what: string): Promise<void> {
  console.log(`    $ podman exec ${from} ping -c 3 ${to}        # ${what}`);
  const r = await node.podman.exec(from, ['ping', '-c', '3', '-W', '2', to], true);
  show(r.stdout.split('\n').filter((l) => /transmitted|round-trip/.test(l)).join('\n'));
  check(r.exitCode === 0, `${from} reaches ${what} (${to})`);
}
