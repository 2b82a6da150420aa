// Emulated nodes for the WireGuard data plane: each node a namespace on a shared
// "underlay" bridge (192.0.2.0/24), with a "pod" namespace behind it on the node's pod
// subnet. The agent's part (key, backend, reconcile) is the real code; everything this
// file starts it also tears down, even when creation fails halfway.
import type { ChildProcess } from 'node:child_process';
import { spawnIn, type Spawned } from '../../../helpers/spawn-in.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OverlayChanges } from '../../../../node-agent/overlay/diff.js';
import { reconcileOverlay, type ReconcileResult } from '../../../../node-agent/overlay/reconcile.js';
import type { OverlayInput, OverlayPeer, OverlaySelf } from '../../../../node-agent/overlay/plan.js';
import { openBackend, type WireguardBackend } from '../../../../node-agent/wireguard/backend.js';
import { ensureNodeKey, type NodeKey } from '../../../../node-agent/wireguard/keys.js';
import { WireguardGoBackend } from '../../../../node-agent/wireguard/wireguard-go-backend.js';
import { Netns, uniqueName } from '../../../helpers/netns.js';
import { teardownWireguard } from '../../../helpers/wireguard-teardown.js';
import { run } from '../../../helpers/sh.js';

export const HOST_CIDR = '10.10.0.0/16';
export const POD_CIDR = '10.244.0.0/16';
export const LISTEN_PORT = 51820;

export interface EmulatedNode {
  name: string;
  ns: Netns;
  pod: Netns;
  /** Unique on the machine: wireguard-go's socket directory is shared by all namespaces. */
  ifname: string;
  underlayAddress: string;
  hostAddress: string;
  podSubnet: string;
  podAddress: string;
  key: NodeKey;
  logPath: string;
  /** The agent's current backend; replaced when a test "restarts the agent". */
  backend: WireguardBackend | undefined;
}

export class Cluster {
  readonly nodes: EmulatedNode[] = [];
  private underlay: Netns | undefined;
  private readonly namespaces: Netns[] = [];
  private readonly children: ChildProcess[] = [];
  /** Every wireguard-go any backend instance started, so none outlives the test. */
  private readonly daemonPids = new Set<number>();
  private dir = '';

  static async create(names: readonly string[]): Promise<Cluster> {
    const c = new Cluster();
    try {
      await c.build(names);
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  private async build(names: readonly string[]): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'warren-wg-'));
    this.underlay = await this.netns('u');
    await this.underlay.runner('ip', ['link', 'add', 'br0', 'type', 'bridge']);
    await this.underlay.runner('ip', ['link', 'set', 'br0', 'up']);
    for (const [i, name] of names.entries()) {
      const n = i + 1;
      const ns = await this.netns(name);
      const pod = await this.netns(`${name}p`);
      await run('ip', ['-n', this.underlay.name, 'link', 'add', `u${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      await run('ip', ['-n', this.underlay.name, 'link', 'set', `u${n}`, 'master', 'br0', 'up']);
      await run('ip', ['-n', ns.name, 'link', 'add', 'pod0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
      await run('ip', ['-n', ns.name, '-batch', '-'], {
        input: [`addr add 192.0.2.${n}/24 dev eth0`, 'link set eth0 up', `addr add 10.244.${n}.1/24 dev pod0`, 'link set pod0 up'].join('\n') + '\n',
      });
      await run('ip', ['-n', pod.name, '-batch', '-'], {
        input: [`addr add 10.244.${n}.2/24 dev eth0`, 'link set eth0 up', `route add default via 10.244.${n}.1`].join('\n') + '\n',
      });
      await ns.runner('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
      const key = await ensureNodeKey(join(this.dir, name, 'wireguard.key'));
      const ifname = uniqueName('wg');
      this.nodes.push({
        name, ns, pod, ifname, key,
        underlayAddress: `192.0.2.${n}`,
        hostAddress: `10.10.0.${n}`,
        podSubnet: `10.244.${n}.0/24`,
        podAddress: `10.244.${n}.2`,
        logPath: join(this.dir, `wireguard-go-${ifname}.log`),
        backend: undefined,
      });
    }
  }

  private async netns(prefix: string): Promise<Netns> {
    const ns = await Netns.create(prefix);
    this.namespaces.push(ns);
    return ns;
  }

  node(name: string): EmulatedNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  self(n: EmulatedNode): OverlaySelf {
    return {
      publicKey: n.key.publicKey, privateKeyPath: n.key.privateKeyPath,
      hostAddress: n.hostAddress, hostCidr: HOST_CIDR, podSubnet: n.podSubnet, podCidr: POD_CIDR,
      listenPort: LISTEN_PORT, mtu: 1420,
    };
  }

  peerOf(n: EmulatedNode): OverlayPeer {
    return { publicKey: n.key.publicKey, hostAddress: n.hostAddress, podSubnet: n.podSubnet, endpoint: `${n.underlayAddress}:${LISTEN_PORT}` };
  }

  /** What the agent on `n` would be told: every node of the cluster, itself included. */
  input(n: EmulatedNode, peers: readonly EmulatedNode[] = this.nodes): OverlayInput {
    return { self: this.self(n), peers: peers.map((p) => this.peerOf(p)) };
  }

  /** A new backend object, as a freshly started agent makes one. */
  async startAgent(n: EmulatedNode): Promise<WireguardBackend> {
    n.backend = await openBackend({ ifname: n.ifname, runner: n.ns.runner, netnsPath: n.ns.path, logPath: n.logPath });
    return n.backend;
  }

  async reconcile(n: EmulatedNode, peers: readonly EmulatedNode[] = this.nodes): Promise<ReconcileResult> {
    const backend = n.backend ?? (await this.startAgent(n));
    try {
      return await reconcileOverlay(backend, n.ns.runner, this.input(n, peers));
    } finally {
      this.trackDaemon(backend);
    }
  }

  /**
   * Runs one agent life as its own process inside the node's namespace (agent-once.ts):
   * it reconciles, reports, and is SIGKILLed. What it started must outlive it.
   */
  async agentProcess(n: EmulatedNode, peers: readonly EmulatedNode[] = this.nodes): Promise<{ ensured: string; changes: OverlayChanges; pid: number | undefined }> {
    const script = fileURLToPath(new URL('agent-once.ts', import.meta.url));
    const agent = this.spawnIn(n.ns, process.execPath, ['--import', 'tsx', script, JSON.stringify({ ifname: n.ifname, logPath: n.logPath, input: this.input(n, peers) })]);
    await agent.exited;
    const line = agent.output().trim().split('\n').pop() ?? '';
    if (agent.child.signalCode !== 'SIGKILL' || !line.startsWith('{')) throw new Error(`the agent process failed: ${agent.output()}`);
    const report = JSON.parse(line) as { ensured: string; changes: OverlayChanges; pid: number | undefined };
    if (report.pid !== undefined) this.daemonPids.add(report.pid);
    return report;
  }

  trackDaemon(backend: WireguardBackend): void {
    if (backend instanceof WireguardGoBackend && backend.pid !== undefined) this.daemonPids.add(backend.pid);
  }

  /** Starts a process inside `ns` whose output the test reads while it runs; killed at teardown. */
  spawnIn(ns: Netns, file: string, args: readonly string[]): Spawned {
    const spawned = spawnIn(ns, file, args);
    this.children.push(spawned.child);
    return spawned;
  }

  async destroy(): Promise<void> {
    try {
      await teardownWireguard({
        children: this.children,
        backends: this.nodes.flatMap((n) => (n.backend ? [n.backend] : [])),
        daemonPids: this.daemonPids,
        signal: 'SIGTERM',
        ifnames: this.nodes.map((n) => n.ifname),
        afterDaemons: async (attempt) => {
          for (const ns of this.namespaces.reverse()) await attempt(() => ns.destroy());
        },
      });
    } finally {
      if (this.dir) await rm(this.dir, { recursive: true, force: true });
    }
  }
}


/** "N packets transmitted, M received" from ping's summary. */
export function pingCounts(output: string): { transmitted: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  if (!m) throw new Error(`no ping summary in: ${output}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

/** One ping that must succeed (the runner checks the exit status). */
export async function ping(ns: Netns, address: string, count = 1): Promise<void> {
  await ns.runner('ping', ['-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', address]);
}

export async function pingOk(ns: Netns, address: string): Promise<boolean> {
  return (await ns.runner('ping', ['-n', '-q', '-c', '1', '-W', '1', address], { allowFailure: true })).exitCode === 0;
}
