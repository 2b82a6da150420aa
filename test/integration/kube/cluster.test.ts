// Warren under real Kubernetes v1.37: three emulated nodes (a public control-plane node,
// one behind a home router, one behind a symmetric NAT), each with its own containerd and
// kubelet, joined with kubeadm over Warren's host overlay; then the shipped DaemonSet is
// applied and pods on every node talk to each other and to the API server. coturn runs its
// REST API: no node holds a TURN password; each agent relays with its own expiring
// credential, which the issuer writes in etcd (by hand beside etcd until the Deployment
// warren-turn-issuer takes over, as the README's walkthrough says). One cluster for
// the whole file (building it takes about a minute); the steps run in order and each says
// what a user would see. Figures are printed as they are measured.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyLayout } from '../../../lib/etcd/keys.js';
import type { AgentStatus } from '../../../node-agent/status.js';
import { KubeCluster, type ClusterNode } from '../../helpers/kube/cluster.js';
import { deletePods, podExec, runPods, type PodInfo } from '../../helpers/kube/pods.js';
import { kubeTools } from '../../helpers/kube/tools.js';
import { Prometheus } from '../../helpers/kube/prometheus.js';
import { CONTAINERD_SOCKET } from '../../helpers/kube/containerd.js';
import { waitFor } from '../../helpers/sh.js';
import { cidrContains, parseCidr } from '../../../lib/cidr.js';

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status: { conditions: { type: string; status: string; reason?: string; message?: string }[] };
}

let cluster: KubeCluster;
const figures: string[] = [];
const figure = (line: string): void => {
  figures.push(line);
  console.log(`[figure] ${line}`);
};

async function nodes(): Promise<NodeJson[]> {
  return (await cluster.kubectlJson<{ items: NodeJson[] }>(['get', 'nodes'])).items;
}

/** `warren-agent status --json` of the systemd-style agent, on the node itself. */
async function systemdAgentStatus(n: ClusterNode): Promise<AgentStatus> {
  return JSON.parse((await n.exec(resolve('dist/bin/warren-agent'), ['status', '--json'])).stdout) as AgentStatus;
}

/** The same, of the DaemonSet's agent, through kubectl exec. */
async function podAgentStatus(node: string): Promise<AgentStatus> {
  const pod = (await cluster.kubectl(['-n', 'warren-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=warren-node',
    '--field-selector', `spec.nodeName=${node}`, '-o', 'name'])).trim();
  return JSON.parse(await cluster.kubectl(['-n', 'warren-system', 'exec', pod, '-c', 'agent', '--', 'warren-agent', 'status', '--json'])) as AgentStatus;
}

const ISSUER = ['-n', 'warren-system', '-l', 'app.kubernetes.io/name=warren-turn-issuer'];
const issuerLog = (): Promise<string> => cluster.kubectl(['logs', ...ISSUER, '--tail=-1']);
/** The TURN credentials etcd holds, by key. */
const credentialKeys = async (): Promise<string[]> =>
  (await cluster.etcd.etcdctl(['get', '--prefix', '--keys-only', keyLayout('/warren').credentials])).split('\n').filter(Boolean);

/** The relayed pair's agents hold relays made with their issued credentials, valid for hours (12 h TTL). */
function expectIssuedRelay(s: AgentStatus): void {
  expect(s.relay, `${s.node}: relay`).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+$/);
  expect(s.relayCredentialExpires, `${s.node}: relayCredentialExpires`).toBeDefined();
  expect(Date.parse(s.relayCredentialExpires!) - Date.now(), s.node).toBeGreaterThan(11 * 3600_000);
}

function condition(n: NodeJson, type: string): { status: string; reason?: string; message?: string } | undefined {
  return n.status.conditions.find((c) => c.type === type);
}

/** What pods hold on a node: OVS ports, host veths, host-local leases (other pods', e.g. CoreDNS, too). */
async function attachments(node: ClusterNode): Promise<string[]> {
  const left: string[] = [];
  const ports = (await node.exec('ovs-vsctl', ['--if-exists', 'list-ports', 'warren0'], { allowFailure: true })).stdout.trim();
  left.push(...ports.split('\n').filter(Boolean).map((p) => `OVS port ${p}`));
  const links = JSON.parse((await node.exec('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[];
  const veths = links.filter((l) => l.ifname.startsWith('wrn')).map((l) => l.ifname);
  left.push(...veths.map((v) => `veth ${v}`));
  const leases = (await node.sh('ls /var/lib/cni/networks/warren 2>/dev/null || true')).split('\n')
    .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  left.push(...leases.map((l) => `host-local lease ${l}`));
  return left;
}

describe('Warren on a real Kubernetes cluster', () => {
  beforeAll(async () => {
    const started = Date.now();
    cluster = await KubeCluster.create(kubeTools(), [
      { name: 'cp', kind: 'public' },
      { name: 'edge-home', kind: 'home-router' },
      { name: 'edge-sym', kind: 'symmetric' },
    ]);
    figure(`cluster built (3 nodes, kubeadm init + 2 joins over the host overlay): ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 900_000);

  afterAll(async () => {
    await cluster?.destroy();
    console.log(figures.map((f) => `[figure] ${f}`).join('\n'));
  }, 300_000);

  it('joins nodes behind NATs with kubeadm over the host overlay; they stay NotReady while no CNI is installed', async () => {
    const list = await nodes();
    expect(list.map((n) => n.metadata.name).sort()).toEqual(['cp', 'edge-home', 'edge-sym']);
    for (const n of list) {
      const ready = condition(n, 'Ready');
      expect(ready?.status, `${n.metadata.name}: ${JSON.stringify(ready)}`).toBe('False');
      expect(ready?.message ?? '').toMatch(/network plugin|cni/i);
    }
    // Every kubelet registered with its host-overlay address: the API server reaches it there.
    const wide = await cluster.kubectlJson<{ items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } }[] }>(['get', 'nodes']);
    for (const n of cluster.nodes) {
      const j = wide.items.find((x) => x.metadata.name === n.name)!;
      expect(j.status.addresses.find((a) => a.type === 'InternalIP')?.address).toBe(n.hostAddress);
    }
  });

  it('relays the pair that needs it before Kubernetes runs, with credentials from the issuer run by hand: no node holds a TURN password', async () => {
    const [home, sym] = [cluster.nodes.find((n) => n.name === 'edge-home')!, cluster.nodes.find((n) => n.name === 'edge-sym')!];
    await waitFor('edge-home and edge-sym relayed to each other', async () => {
      const [a, b] = await Promise.all([systemdAgentStatus(home), systemdAgentStatus(sym)]);
      return a.peers.find((p) => p.node === 'edge-sym')?.path === 'relayed' && b.peers.find((p) => p.node === 'edge-home')?.path === 'relayed';
    }, 60_000, 500).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(await systemdAgentStatus(home).catch(String))}\n` +
        `bootstrap issuer: ${readFileSync(cluster.bootstrapIssuer!.log, 'utf8').slice(-2000)}`);
    });
    for (const n of [home, sym]) expectIssuedRelay(await systemdAgentStatus(n));
    await waitFor('edge-home pinging edge-sym over the relay', () => cluster.overlayPing(home, sym.hostAddress), 20_000, 200);
    expect((await credentialKeys()).sort()).toEqual(cluster.nodes.map((n) => keyLayout('/warren').turnCredential(n.name)).sort());
    for (const n of cluster.nodes) {
      expect(await n.sh('ls -A /etc/warren'), n.name).not.toMatch(/turn/);
      expect(await n.sh('cat /etc/warren/agent.yaml'), n.name).toMatch(/issued: true/);
    }
  });

  it('rolls out with kubectl apply -f daemonset/warren.yaml: every node Ready, the agent adopting the overlay', async () => {
    // The README's hand-over: the systemd-style agents stop; their wireguard-go and tunnels stay.
    // The machine's PID namespace is shared: a node's own wireguard-go is the one in its mount namespace.
    const wgPid = async (n: ClusterNode): Promise<string> => n.processes()
      .filter((pid) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8') === 'wireguard-go\n'; } catch { return false; } }).join(' ');
    for (const n of cluster.nodes) await cluster.stopSystemdAgent(n);
    const daemons = new Map<string, string>();
    for (const n of cluster.nodes) daemons.set(n.name, await wgPid(n));
    const started = Date.now();
    await cluster.applyWarren();
    await waitFor('every node Ready', async () => (await nodes()).every((n) => condition(n, 'Ready')?.status === 'True'), 180_000, 500)
      .catch(async (err: unknown) => {
        throw new Error(`${String(err)}\n${await cluster.kubectl(['-n', 'warren-system', 'describe', 'pods']).catch(String)}`);
      });
    const readyS = (Date.now() - started) / 1000;
    await cluster.kubectl(['-n', 'warren-system', 'rollout', 'status', 'daemonset/warren-node', '--timeout=90s']).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await cluster.kubectl(['-n', 'warren-system', 'describe', 'pods']).catch(String)}`);
    });
    // kubeadm's CoreDNS waited for a pod network: Warren is one.
    await cluster.kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=120s']);
    figure(`kubectl apply to every node Ready: ${readyS.toFixed(1)} s; DaemonSet rolled out: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await cluster.kubectl(['-n', 'warren-system', 'rollout', 'status', 'deployment/warren-turn-issuer', '--timeout=120s']);
    figure(`kubectl apply to the TURN issuer's Deployment available: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const n of cluster.nodes) {
      // Adopted, not replaced: the DaemonSet's agent drives the same wireguard-go (through /var/run/wireguard).
      expect(daemons.get(n.name), `${n.name}: one wireguard-go before the hand-over`).toMatch(/^\d+$/);
      expect(await wgPid(n), `${n.name}: the same wireguard-go after it`).toBe(daemons.get(n.name));
      const conflist = await n.sh('cat /etc/cni/net.d/10-warren.conflist');
      expect(conflist).toContain(n.podSubnet);
      expect(await n.sh('test -x /opt/cni/bin/warren && echo yes')).toContain('yes');
    }
  });

  it('runs the TURN issuer as the Deployment: on the control-plane node, host network, Secrets 0400, no privilege; the hand-over stops the one run by hand', async () => {
    const pods = (await cluster.kubectlJson<{ items: { metadata: { name: string }; spec: { nodeName: string; hostNetwork?: boolean };
      status: { podIP: string; conditions: { type: string; status: string }[] } }[] }>(['get', 'pods', ...ISSUER])).items;
    expect(pods).toHaveLength(1);
    const pod = pods[0]!;
    expect(pod.spec.nodeName).toBe('cp');
    expect(pod.status.podIP).toBe(cluster.cp.hostAddress);
    expect(pod.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    const inPod = (script: string): Promise<string> => cluster.kubectl(['-n', 'warren-system', 'exec', pod.metadata.name, '--', 'sh', '-c', script]);
    expect((await inPod('stat -L -c "%a %u" /etc/warren/turn/secret /etc/warren/etcd/tls.key')).trim().split('\n')).toEqual(['400 0', '400 0']);
    expect((await inPod('grep -E "^Cap(Eff|Prm):" /proc/1/status')).trim().split('\n').map((l) => l.split(/\s+/)[1])).toEqual(['0000000000000000', '0000000000000000']);
    expect((await inPod('touch /warren/x 2>&1 || true'))).toMatch(/Read-only file system/);
    // Reconciling with its own certificate and the ConfigMap's endpoints: nothing to write while the
    // credentials the bootstrap issuer wrote are not half spent.
    await waitFor('the issuer\'s first pass', async () => (await issuerLog()).includes('issuing TURN credentials valid 43200 s'), 30_000, 500);
    expect(await issuerLog()).not.toMatch(/cannot reconcile|refused|error/i);
    expect(await cluster.stopBootstrapIssuer()).toBe(143);
  });

  let pods: (PodInfo & { readyMs: number })[] = [];
  /** Per node, what other pods (CoreDNS) held before the test pods came. */
  const before = new Map<string, string[]>();

  it('runs pods on every node with addresses from that node\'s subnet', async () => {
    for (const n of cluster.nodes) before.set(n.name, await attachments(n));
    pods = await runPods(cluster, cluster.nodes.flatMap((n) => [{ name: `${n.name}-a`, node: n.name }, { name: `${n.name}-b`, node: n.name }]));
    for (const p of pods) {
      const node = cluster.nodes.find((n) => n.name === p.node)!;
      expect(cidrContains(parseCidr(node.podSubnet), p.ip), `${p.name} ${p.ip} in ${node.podSubnet}`).toBe(true);
    }
    for (const n of cluster.nodes) {
      const mine = pods.filter((p) => p.node === n.name).map((p) => p.readyMs);
      figure(`pod creation to Running on ${n.name} (${n.site.kind}): ${mine.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`);
    }
  });

  it('hands the pods\' ADDs to the resident CNI server (the cni-server container) on every node', async () => {
    // A node's first ADDs make its bridge with ovs-vsctl, which the image lacks: the plugin
    // did those itself (the two pods above, started together). A pod started now is the server's.
    const late = await runPods(cluster, cluster.nodes.map((n) => ({ name: `${n.name}-c`, node: n.name })));
    for (const p of late) {
      const node = cluster.nodes.find((n) => n.name === p.node)!;
      expect(cidrContains(parseCidr(node.podSubnet), p.ip), `${p.name} ${p.ip} in ${node.podSubnet}`).toBe(true);
    }
    for (const n of cluster.nodes) {
      const pod = (await cluster.kubectl(['-n', 'warren-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=warren-node', '--field-selector', `spec.nodeName=${n.name}`, '-o', 'name'])).trim();
      const log = (await cluster.kubectl(['-n', 'warren-system', 'logs', pod, '-c', 'cni-server'])).split('\n')
        .filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; verb?: string; exitCode?: number; ms?: number; reason?: string });
      const served = log.filter((l) => l.msg === 'served' && l.verb === 'ADD' && l.exitCode === 0);
      const seen = served.length > 0 ? '' : `\nthe node's links: ${await n.sh('ip -o link show | cut -d: -f2 | tr -d "\\n"')}` +
        `\nthe server's: ${await cluster.kubectl(['-n', 'warren-system', 'exec', pod, '-c', 'cni-server', '--', 'cat', '/proc/net/dev']).catch(String)}`;
      expect(served.length, `${n.name}: ${JSON.stringify(log.filter((l) => l.msg !== 'served'))}${seen}`).toBeGreaterThanOrEqual(1);
      // The server is its container's pid 1; its programs still go through warren-spawner.
      expect(log.find((l) => l.msg === 'listening'), n.name).toMatchObject({ pid: 1, spawner: expect.any(Number) });
      expect(log.filter((l) => l.msg.startsWith('warren-spawner is gone') || l.msg.startsWith('no warren-spawner')), n.name).toEqual([]);
      figure(`${n.name}: ADDs served by the resident server ${served.length} (its own time ${served.map((l) => `${l.ms} ms`).join(', ')}), left to the plugin ${log.filter((l) => l.msg === 'refused').map((l) => `${l.verb}: ${l.reason}`).join('; ') || 'none'}`);
    }
  });

  it('pods reach each other across the NATs: ping and TCP, every pair of nodes', async () => {
    const failures: string[] = [];
    for (const from of pods.filter((p) => p.name.endsWith('-a'))) {
      for (const to of pods.filter((p) => p.name !== from.name)) {
        const ping = await podExec(cluster, from.name, ['ping', '-c', '1', '-W', '2', to.ip]);
        if (!ping.ok) failures.push(`ping ${from.name} -> ${to.name} (${to.ip}): ${ping.out.trim()}`);
        // busybox-static's own wget -T crashes (Debian 1.35): the timeout applet bounds it instead.
        const http = await podExec(cluster, from.name, ['timeout', '5', 'wget', '-qO-', `http://${to.ip}:8080/`]);
        if (!http.out.includes(`hello from ${to.name}`)) failures.push(`TCP ${from.name} -> ${to.name}: ${http.out.trim()}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('pods reach the API server through its Service (kube-proxy) with their own service-account token, and find it through CoreDNS', async () => {
    for (const p of pods.filter((x) => x.name.endsWith('-a'))) {
      // In-cluster kubectl: https://$KUBERNETES_SERVICE_HOST (10.96.0.1), the pod's token and CA.
      const r = await podExec(cluster, p.name, ['kubectl', 'get', '--raw', '/version']);
      expect(r.out, p.name).toContain('"gitVersion": "v1.37.2"');
      const who = await podExec(cluster, p.name, ['kubectl', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
      expect(who.out, p.name).toBe('system:serviceaccount:default:default');
      // And by name, through CoreDNS (a pod on the control-plane node, itself on Warren's network).
      const dns = await podExec(cluster, p.name, ['nslookup', 'kubernetes.default.svc.cluster.local']);
      expect(dns.out, p.name).toMatch(/Address:\s+10\.96\.0\.1\b/);
    }
  });

  it('the agent keeps each Node true: NetworkUnavailable False, overlay annotations, spec.podCIDR from Warren', async () => {
    await waitFor('every Node marked by its agent', async () => (await nodes()).every((n) =>
      condition(n, 'NetworkUnavailable')?.status === 'False' && n.metadata.annotations?.['warren.dev/public-key']), 30_000, 500);
    for (const n of await nodes()) {
      const node = cluster.nodes.find((c) => c.name === n.metadata.name)!;
      expect(condition(n, 'NetworkUnavailable')?.reason).toBe('WarrenOverlayUp');
      const a = n.metadata.annotations!;
      expect(a['warren.dev/host-address']).toBe(node.hostAddress);
      expect(a['warren.dev/public-key']).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(a['warren.dev/paths']).toMatch(/^direct=\d+,relayed=\d+,none=0$/);
      // The controller-manager allocates nothing (allocate-node-cidrs=false): Warren's subnet is the Node's.
      expect([n.spec.podCIDR, n.spec.podCIDRs]).toEqual([node.podSubnet, [node.podSubnet]]);
    }
  });

  it('grants the agent exactly the API access it uses: anything else is refused', async () => {
    const can = async (verb: string, resource: string): Promise<string> => (await cluster.cp.exec('kubectl',
      ['--kubeconfig', '/etc/kubernetes/admin.conf', 'auth', 'can-i', verb, resource, '--as=system:serviceaccount:warren-system:warren-node'],
      { env: { PATH: cluster.path }, allowFailure: true })).stdout.trim();
    for (const [verb, resource] of [['get', 'nodes'], ['patch', 'nodes'], ['patch', 'nodes/status']] as const) expect(await can(verb, resource), `${verb} ${resource}`).toBe('yes');
    for (const [verb, resource] of [['list', 'nodes'], ['delete', 'nodes'], ['update', 'nodes'], ['get', 'secrets'], ['list', 'pods'],
      ['create', 'pods'], ['get', 'configmaps']] as const) expect(await can(verb, resource), `${verb} ${resource}`).toBe('no');
  });

  it('answers `warren-agent status` through kubectl exec', async () => {
    const pod = (await cluster.kubectl(['-n', 'warren-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=warren-node', '--field-selector', 'spec.nodeName=edge-home', '-o', 'name'])).trim();
    const out = await cluster.kubectl(['-n', 'warren-system', 'exec', pod, '-c', 'agent', '--', 'warren-agent', 'status']);
    expect(out).toContain('node edge-home');
    expect(out).toMatch(/kubernetes node edge-home .*NetworkUnavailable False/);
    for (const peer of ['cp', 'edge-sym']) expect(out).toMatch(new RegExp(`^${peer}\\s+(direct|relayed)\\s`, 'm'));
    // The DaemonSet's agents relay the pair that needs it with their issued credentials (no TURN Secret mounted).
    for (const node of ['edge-home', 'edge-sym']) {
      const s = await podAgentStatus(node);
      expectIssuedRelay(s);
      expect(s.peers.find((p) => p.node === (node === 'edge-home' ? 'edge-sym' : 'edge-home'))?.path, node).toBe('relayed');
      figure(`${node}'s agent (DaemonSet): relay ${s.relay}, credential until ${s.relayCredentialExpires}`);
    }
  });

  it('exposes Prometheus metrics that a real Prometheus scrapes from every agent', async () => {
    const prom = Prometheus.start(cluster.cp);
    await waitFor('Prometheus scraping three agents', async () => {
      const up = await prom.query('up{job="warren-agent"}').catch(() => []);
      return up.length === 3 && up.every((s) => s.value[1] === '1');
    }, 60_000, 1000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(await prom.targets().catch(String), null, 1)}\n${cluster.cp.logOf('prometheus').slice(-2000)}`);
    });
    const peers = await prom.query('sum by (node) (warren_peers{path=~"direct|relayed"})');
    expect(peers.map((s) => [s.metric.node, s.value[1]]).sort()).toEqual([['cp', '2'], ['edge-home', '2'], ['edge-sym', '2']]);
    // The test pods' ADDs, counted from warren-cni's log on each node.
    const adds = await prom.query('sum by (node) (warren_cni_calls_total{verb="ADD",result="ok"})');
    expect(adds.length).toBe(3);
    for (const s of adds) expect(Number(s.value[1]), s.metric.node).toBeGreaterThanOrEqual(2);
    expect((await prom.query('warren_peer_last_handshake_age_seconds')).length).toBe(6);
  });

  it('a rolling update of the DaemonSet keeps pod traffic across nodes flowing', async () => {
    const image = cluster.tools.warrenImage;
    const next = `${image}-next`;
    const full = (ref: string): string => (ref.split('/')[0]!.includes('.') ? ref : `docker.io/${ref}`);
    for (const n of cluster.nodes) await n.exec('ctr', ['--address', CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'tag', '--force', full(image), full(next)]);
    // Two pairs: cp -> edge-home (direct) and edge-home -> edge-sym (relayed through TURN).
    const pairs = [['cp-a', 'edge-home-b', 'direct'], ['edge-home-a', 'edge-sym-a', 'relayed']] as const;
    const ip = (name: string): string => pods.find((p) => p.name === name)!.ip;
    for (const [from, to] of pairs) {
      await podExec(cluster, to, ['sh', '-c', 'nc -ll -p 9000 -e cat </dev/null >/dev/null 2>&1 &']);
      // Everything in the background lets go of the exec session's output, or kubectl exec waits for it.
      await podExec(cluster, from, ['sh', '-c', `ping -i 0.1 ${ip(to)} </dev/null >/tmp/ping.out 2>&1 & echo $! > /tmp/ping.pid; ` +
        `(i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done) </dev/null 2>/dev/null | nc ${ip(to)} 9000 >/tmp/tcp.out 2>&1 & echo $! > /tmp/tcp.pid`]);
    }
    const started = Date.now();
    await cluster.kubectl(['-n', 'warren-system', 'set', 'image', 'daemonset/warren-node', `install-cni=${next}`, `configgen=${next}`, `agent=${next}`, `cni-server=${next}`]);
    await cluster.kubectl(['-n', 'warren-system', 'rollout', 'status', 'daemonset/warren-node', '--timeout=180s']);
    const rolledS = (Date.now() - started) / 1000;
    const replies = async (from: string): Promise<number[]> =>
      [...(await podExec(cluster, from, ['cat', '/tmp/ping.out'])).out.matchAll(/seq=(\d+)/g)].map((m) => Number(m[1]));
    // Every pair answers again, and keeps answering for a second, on the new agents.
    for (const [from] of pairs) {
      const since = (await replies(from)).length;
      await waitFor(`${from}'s pings answered again after the update`, async () => (await replies(from)).length >= since + 10, 60_000, 500);
    }
    const problems: string[] = [];
    for (const [from, to, path] of pairs) {
      await podExec(cluster, from, ['sh', '-c', 'kill -INT $(cat /tmp/ping.pid)']);
      const ping = (await podExec(cluster, from, ['cat', '/tmp/ping.out'])).out;
      const seqs = [...ping.matchAll(/seq=(\d+)/g)].map((m) => Number(m[1]));
      const sent = Number(/(\d+) packets transmitted/.exec(ping)?.[1] ?? NaN);
      let worst = 0;
      for (let i = 1; i < seqs.length; i++) worst = Math.max(worst, seqs[i]! - seqs[i - 1]! - 1);
      const gapS = worst * 0.1;
      const echoed = async (): Promise<number> => Number((await podExec(cluster, from, ['sh', '-c', 'tail -n 1 /tmp/tcp.out'])).out.trim());
      const first = await echoed();
      await waitFor(`${from}'s TCP connection echoing`, async () => (await echoed()) > first, 10_000, 200).catch(() => undefined);
      const tcpKept = (await podExec(cluster, from, ['sh', '-c', 'kill -0 $(cat /tmp/tcp.pid)'])).ok && (await echoed()) > first;
      figure(`rolling update (${rolledS.toFixed(1)} s for 3 nodes), ${from} -> ${to} (${path}): ${sent} pings every 0.1 s, ` +
        `${sent - seqs.length} lost, longest gap ${gapS.toFixed(1)} s; TCP connection ${tcpKept ? 'kept' : 'LOST'}`);
      if (!tcpKept) problems.push(`${from} -> ${to}: TCP connection lost`);
      // Relayed too: the DaemonSet surges, the new agent takes the old one's TURN allocation over (handover.ts).
      if (gapS > 1) problems.push(`${from} -> ${to}: ${gapS.toFixed(1)} s without ping replies`);
    }
    expect(problems).toEqual([]);
  });

  it('deleting the pods leaves nothing behind on any node', async () => {
    await deletePods(cluster);
    const residue = async (n: ClusterNode): Promise<string[]> => (await attachments(n)).filter((a) => !before.get(n.name)!.includes(a));
    for (const n of cluster.nodes) {
      await waitFor(`${n.name} clean`, async () => (await residue(n)).length === 0, 30_000, 500)
        .catch(async () => { throw new Error(`${n.name}: ${(await residue(n)).join('; ')}`); });
    }
  });

  it('a node drained and removed is released: its subnet freed in etcd, its peers drop it', async () => {
    const gone = cluster.nodes.find((n) => n.name === 'edge-sym')!;
    await cluster.kubectl(['drain', gone.name, '--ignore-daemonsets', '--delete-emptydir-data', '--force', '--timeout=60s']);
    // On the node itself (the README's removal steps): stop the kubelet, kubeadm reset.
    await cluster.stopKubelet(gone);
    await gone.exec('kubeadm', ['reset', '-f', `--cri-socket=unix://${CONTAINERD_SOCKET}`], { env: { PATH: cluster.path } });
    await cluster.kubectl(['delete', 'node', gone.name]);
    const released = await cluster.configgen(cluster.cp, ['release', '--node', gone.name]);
    expect(released).toContain(`${gone.name}: released pod subnet ${gone.podSubnet}`);
    const listing = JSON.parse(await cluster.configgen(cluster.cp, ['list', '--json'])) as unknown;
    expect(JSON.stringify(listing)).not.toContain(gone.name);
    const started = Date.now();
    const pod = (await cluster.kubectl(['-n', 'warren-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=warren-node', '--field-selector', 'spec.nodeName=cp', '-o', 'name'])).trim();
    await waitFor('cp\'s agent dropping edge-sym', async () => !(await cluster.kubectl(['-n', 'warren-system', 'exec', pod, '-c', 'agent', '--',
      'warren-agent', 'status'])).includes('edge-sym'), 20_000, 500);
    figure(`released node dropped by its peers ${((Date.now() - started) / 1000).toFixed(1)} s after warren-configgen release`);
    // The Deployment, the only issuer left, deletes the released node's TURN credential (it watches the allocations).
    const credentialKey = keyLayout('/warren').turnCredential(gone.name);
    await waitFor('the issuer deleting edge-sym\'s TURN credential', async () => !(await credentialKeys()).includes(credentialKey), 20_000, 200);
    expect((await credentialKeys()).sort()).toEqual(['cp', 'edge-home'].map((n) => keyLayout('/warren').turnCredential(n)));
    expect(await issuerLog()).toContain('deleted the credentials of departed node(s) edge-sym');
    await waitFor('cp\'s Node annotation counting two peers less one', async () =>
      (await nodes()).find((n) => n.metadata.name === 'cp')?.metadata.annotations?.['warren.dev/paths'] === 'direct=1,relayed=0,none=0', 30_000, 500);
  });
});
