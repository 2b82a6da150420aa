// Test pods on a KubeCluster: busybox pinned to a node, and what a test asks of them.
import type { KubeCluster } from './cluster.js';
import { waitFor } from '../sh.js';

export interface PodInfo {
  name: string;
  node: string;
  ip: string;
}

interface PodJson {
  metadata: { name: string; creationTimestamp: string };
  spec: { nodeName: string };
  status: { phase: string; podIP?: string; conditions?: { type: string; status: string; lastTransitionTime: string }[] };
}

/** Pure: a pod pinned to `node` that serves HTTP on 8080 (busybox httpd) and otherwise sleeps. */
export function testPod(name: string, node: string, image: string, namespace = 'default'): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: 'warren-test' } },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      tolerations: [{ operator: 'Exists' }],
      containers: [{
        name: 'main',
        image,
        imagePullPolicy: 'Never',
        command: ['sh', '-c', `mkdir -p /www && echo "hello from ${name}" > /www/index.html && exec httpd -f -p 8080 -h /www`],
      }],
    },
  };
}

/** Creates the pods and waits until every one runs; returns them with their addresses and time to Running. */
export async function runPods(cluster: KubeCluster, pods: { name: string; node: string }[], timeoutMs = 90_000): Promise<(PodInfo & { readyMs: number })[]> {
  const started = Date.now();
  const list = { apiVersion: 'v1', kind: 'List', items: pods.map((p) => testPod(p.name, p.node, cluster.tools.testImage)) };
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(list));
  const ready = new Map<string, number>();
  let last: PodJson[] = [];
  await waitFor('test pods running', async () => {
    last = (await cluster.kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-l', 'app=warren-test'])).items;
    for (const p of last) if (p.status.phase === 'Running' && p.status.podIP && !ready.has(p.metadata.name)) ready.set(p.metadata.name, Date.now() - started);
    return pods.every((p) => ready.has(p.name));
  }, timeoutMs, 250).catch(async (err: unknown) => {
    throw new Error(`${String(err)}\n${await cluster.kubectl(['describe', 'pods', '-l', 'app=warren-test']).catch(String)}`);
  });
  return pods.map((p) => {
    const j = last.find((x) => x.metadata.name === p.name)!;
    return { name: p.name, node: j.spec.nodeName, ip: j.status.podIP!, readyMs: ready.get(p.name)! };
  });
}

/** Runs a command in a pod's container; returns its exit status and output. */
export async function podExec(cluster: KubeCluster, pod: string, command: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await cluster.cp.exec('kubectl', ['--kubeconfig', '/etc/kubernetes/admin.conf', 'exec', pod, '--', ...command],
    { env: { PATH: cluster.path }, allowFailure: true, timeoutMs: 30_000 });
  return { ok: r.exitCode === 0, out: r.stdout + r.stderr };
}

export async function deletePods(cluster: KubeCluster): Promise<void> {
  await cluster.kubectl(['delete', 'pods', '-l', 'app=warren-test', '--wait=true', '--timeout=60s']);
}
