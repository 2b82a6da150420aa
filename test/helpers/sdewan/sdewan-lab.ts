// An emulated SD-EWAN overlay with Warren clusters in it, built the same way for the tests,
// the bench and the demo: one NAT lab; SCC (scc-server.ts) on a public site, reached over
// the emulated internet; hubs as SD-EWAN's CNF configures strongSwan (hub.ts), meshed
// when created and configured by SCC's hook when a connection is created; plain strongSwan
// devices configured by hand (device.ts); and Warren clusters (agent-lab.ts, the real
// binaries), each with its own etcd, whose gateway candidates register the cluster with
// SCC from `gateway.scc` alone.
//
// Every connection restarts its hub's strongSwan (SD-EWAN's CNF does): a restart of a
// hub-hub responder (every hub but the first) drops the hub-hub SA, which only the next
// restart of the first hub brings back (hub.test.ts (c)). Callers order registrations so
// that a connection to the first hub comes last.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayStatus } from '../../../node-agent/status.js';
import { AgentLab, type AgentNode } from '../agent-lab.js';
import { NatLab, type NsWorker, type SiteKind } from '../natlab.js';
import type { Netns } from '../netns.js';
import { startOvs, type OvsInstance } from '../ovs.js';
import { Podman } from '../podman.js';
import { pollUntil } from '../../../lib/poll.js';
import { waitFor } from '../sh.js';
import type { Proposal } from './cnf-config.js';
import { credentialsFromScc } from './cnf-ipsec.js';
import { PlainDevice } from './device.js';
import { Hub } from './hub.js';
import { SccServer } from './scc-server.js';

export const OVERLAY = 'ovl';
export const PROPOSAL: Proposal = { name: 'proposal1', encryption: 'aes256', hash: 'sha256', dhGroup: 'modp4096' };
/** The overlay's data OIPs (SCC's data iprange, minIp 10 to maxIp 40). */
export const DATA_RANGE = '10.10.0.0/24';
export const SCC_PORT = 31298;
export const ECHO_WORKER = new URL('./echo-worker.ts', import.meta.url).pathname;
// SCC's reachability check of a cluster's API passes (hooks absent); only the YAML matters.
export const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
`;

export interface ClusterSpec {
  device: string;
  hubs: string[];
  nodes: [SiteKind, string][];
  /** The node that gets OVS and podman (its pods use the real warren-cni). */
  podmanOn?: string;
  exports: (nodes: AgentNode[]) => { port: number; to: string }[];
}

export interface Cluster {
  device: string;
  hubs: string[];
  agents: AgentLab;
  nodes: AgentNode[];
  podman?: Podman;
}

export class SdewanLab {
  readonly hubs = new Map<string, Hub>();
  readonly devices = new Map<string, PlainDevice>();
  readonly clusters: Cluster[] = [];
  private readonly ovs: OvsInstance[] = [];
  private readonly workers: NsWorker[] = [];

  private constructor(readonly lab: NatLab, readonly scc: SccServer, readonly dir: string) {}

  /** The lab, SCC with the overlay (one proposal, data and provider ranges), and the hubs in order, each meshed with those before it. */
  static async create(hubNames: string[]): Promise<SdewanLab> {
    const dir = mkdtempSync(join(tmpdir(), 'warren-sdewan-lab-'));
    const lab = await NatLab.create();
    let self: SdewanLab | undefined;
    try {
      const sccSite = await lab.addSite('public');
      const scc = await SccServer.start({
        host: sccSite.publicAddress, port: SCC_PORT, netnsPath: sccSite.host.path,
        // rsync deploying a hub-device connection: the hub's CNF gets the IpsecSite and restarts strongSwan.
        hooks: { onHubDeviceConnection: (h, d, oip) => self!.hub(h).addDevice(d, oip) },
      });
      self = new SdewanLab(lab, scc, dir);
      await self.api('POST', 'overlays', { metadata: { name: OVERLAY }, spec: {} });
      await self.api('POST', `overlays/${OVERLAY}/proposals`, { metadata: { name: PROPOSAL.name }, spec: { encryption: PROPOSAL.encryption, hash: PROPOSAL.hash, dhGroup: PROPOSAL.dhGroup } });
      await self.api('POST', `overlays/${OVERLAY}/ipranges`, { metadata: { name: 'data' }, spec: { subnet: '10.10.0.0', minIp: 10, maxIp: 40 } });
      await self.api('POST', 'provider/ipranges', { metadata: { name: 'control' }, spec: { subnet: '10.20.0.0', minIp: 10, maxIp: 40 } });
      for (const name of hubNames) {
        const cert = await self.api('POST', `overlays/${OVERLAY}/certificates`, { metadata: { name }, spec: { isCA: false, clusterType: 'Hub' } });
        const h = await Hub.start(lab, { name, credentials: credentialsFromScc(cert.data), proposals: [PROPOSAL] });
        const earlier = [...self.hubs.values()];
        self.hubs.set(name, h);
        await self.api('POST', `overlays/${OVERLAY}/hubs`, { metadata: { name }, spec: { publicIps: [h.address], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } });
        for (const e of earlier) await h.connectHub(e);
      }
      return self;
    } catch (err) {
      if (self) await self.destroy();
      else await lab.destroy();
      throw err;
    }
  }

  hub(name: string): Hub {
    const h = this.hubs.get(name);
    if (!h) throw new Error(`no hub ${name}`);
    return h;
  }

  device(name: string): PlainDevice {
    return this.devices.get(name)!;
  }

  /** SCC's REST API as an operator uses it; any status from 300 up throws with SCC's message. */
  api(method: string, path: string, body?: unknown): Promise<any> {
    return this.scc.operatorCall(method, path, body);
  }

  /**
   * A plain strongSwan SD-EWAN edge on `hub`, registered and connected through SCC's API,
   * up with its OIP and its echo service. Its operator added closeaction=restart, without
   * which a hub restart leaves it down for good (hub.test.ts (c)), unless `handEdits` says
   * otherwise ([]: exactly as SCC renders it). In its own site behind a home router, or in
   * `host` (a pod's namespace) when given.
   */
  async plainDevice(name: string, hub: string, handEdits: readonly string[] = ['closeaction=restart'], host?: Netns): Promise<PlainDevice> {
    const cert = await this.api('POST', `overlays/${OVERLAY}/certificates`, { metadata: { name }, spec: { isCA: false, clusterType: 'Device' } });
    await this.api('POST', `overlays/${OVERLAY}/devices`, { metadata: { name }, spec: { publicIps: [], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } });
    await this.api('POST', `overlays/${OVERLAY}/hubs/${hub}/devices`, { metadata: { name }, spec: { device: name, isDelegateHub: false } });
    const d = await PlainDevice.start(this.lab, { name, hub: this.hub(hub), credentials: credentialsFromScc(cert.data), proposals: [PROPOSAL], handEdits, host });
    this.devices.set(name, d);
    await d.waitForOip(60_000);
    return d;
  }

  /** A Warren cluster whose nodes are all gateway candidates registering `spec.device` with SCC; agents not started. */
  async cluster(spec: ClusterSpec): Promise<Cluster> {
    const agents = await AgentLab.create(this.lab);
    const c: Cluster = { device: spec.device, hubs: spec.hubs, agents, nodes: [] };
    this.clusters.push(c);
    for (const [kind, name] of spec.nodes) {
      c.nodes.push(await agents.addNode(kind, name, name === spec.podmanOn ? async (site) => {
        const ovs = await startOvs(site.host);
        this.ovs.push(ovs);
        return ['--ovsdb', ovs.db];
      } : undefined));
    }
    const kubeconfigFile = join(this.dir, `${spec.device}.kubeconfig`);
    writeFileSync(kubeconfigFile, KUBECONFIG);
    for (const n of c.nodes) {
      agents.configure(n, {
        gateway: {
          candidates: c.nodes.map((x) => x.name), device: spec.device, hubs: spec.hubs.map((name) => ({ name })), overlayRanges: [DATA_RANGE],
          scc: { url: this.scc.url, overlay: OVERLAY, kubeconfigFile, timeoutSeconds: 60 }, exports: spec.exports(c.nodes),
        },
      });
    }
    const host = c.nodes.find((n) => n.name === spec.podmanOn);
    if (host) {
      const conflist = JSON.parse(readFileSync(join(host.dir, 'net.d', '10-warren.conflist'), 'utf8')) as { name: string };
      c.podman = await Podman.create(host.site.host, { [conflist.name]: conflist });
    }
    return c;
  }

  /** Starts every agent of the cluster and waits until one gateway holds the tunnels to all its hubs; the active node. */
  async start(c: Cluster, timeoutMs = 120_000): Promise<AgentNode> {
    await Promise.all(c.nodes.map((n) => c.agents.start(n)));
    return this.activeWithHubs(c, c.hubs, timeoutMs);
  }

  /** Hands the gateway role to `node` as an operator would: the holder's agent stopped (it resigns) and started again. */
  async makeActive(c: Cluster, node: AgentNode): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const now = await this.activeWithHubs(c, c.hubs, 60_000);
      if (now === node) return;
      await c.agents.stop(now);
      await this.activeWithHubs(c, c.hubs, 60_000);
      await c.agents.start(now);
    }
    throw new Error(`${node.name} did not become ${c.device}'s active gateway`);
  }

  /**
   * What a failed failover assertion prints: per node of `c`, its gateway status, routes to the
   * overlay's ranges (every table), the WireGuard peers' allowed IPs and its agent's last lines.
   */
  async diagnose(c: Cluster, logLines = 40): Promise<string> {
    const out: string[] = [];
    for (const n of c.nodes) {
      const sh = async (file: string, args: string[]) => {
        const r = await n.site.host.exec(file, args, { allowFailure: true });
        return `${r.stdout}${r.stderr}`.trim();
      };
      const status = n.process ? await c.agents.status(n).then((s) => JSON.stringify(s.gateway), (err: unknown) => String(err)) : 'agent not running';
      out.push(`=== ${n.name}: gateway ${status}`,
        `--- routes (all tables)\n${await sh('ip', ['-4', 'route', 'show', 'table', 'all', 'type', 'unicast'])}`,
        `--- wg allowed-ips\n${await sh('wg', ['show', n.ifname, 'allowed-ips'])}`,
        `--- agent log (last ${logLines} lines)\n${c.agents.log(n).trimEnd().split('\n').slice(-logLines).join('\n')}`);
    }
    return out.join('\n');
  }

  async gateways(c: Cluster): Promise<GatewayStatus[]> {
    return Promise.all(c.nodes.filter((n) => n.process).map(async (n) => (await c.agents.status(n)).gateway!));
  }

  /** The active node, once every running agent agrees on it and its tunnels to `hubNames` are up. */
  async activeWithHubs(c: Cluster, hubNames: string[], timeoutMs: number): Promise<AgentNode> {
    let active: AgentNode | undefined;
    let seen: unknown;
    try {
      await waitFor(`${c.device}: one active gateway with tunnels to ${hubNames.join(', ')}`, async () => {
        const g = await this.gateways(c).catch((err: unknown) => String(err));
        seen = g;
        if (typeof g === 'string') return false;
        const holder = g.find((x) => x.role === 'active');
        if (!holder || !g.every((x) => x.activeNode === holder.activeNode)) return false;
        active = c.nodes.find((n) => n.name === holder.activeNode);
        return hubNames.every((h) => holder.hubs.some((s) => s.hub === h && s.ike === 'established' && s.child === 'installed' && s.oip));
      }, timeoutMs, 200);
    } catch (err) {
      const logs = c.nodes.map((n) => `--- ${n.name}\n${c.agents.log(n).split('\n').slice(-15).join('\n')}`).join('\n');
      throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(seen)}\n${logs}`);
    }
    return active!;
  }

  /** The OIP SCC allocated to `device` for `hub`. */
  async oip(device: string, hub: string): Promise<string> {
    return (await this.api('GET', `overlays/${OVERLAY}/devices/${device}`)).status.DataIps[`Hub.${hub}`] as string;
  }

  /** A pod (the cluster's podman, real warren-cni) running `sleep`; its network namespace's path. */
  async pod(c: Cluster, name: string): Promise<string> {
    if (!c.podman) throw new Error(`${c.device} has no podman node`);
    await c.podman.run(name, 'warren', ['sleep', '3600']);
    return (await c.podman.podman(['inspect', '-f', '{{.NetworkSettings.SandboxKey}}', name])).stdout.trim();
  }

  /** An echo-worker (echo-worker.ts) in a node's or a pod's namespace; stopped by destroy(). */
  async worker(ns: { name: string; path: string }): Promise<NsWorker> {
    const w = await this.lab.startWorker(ns, ECHO_WORKER);
    this.workers.push(w);
    return w;
  }

  async destroy(): Promise<void> {
    for (const w of this.workers) await w.stop().catch(() => undefined);
    for (const c of this.clusters) await c.podman?.destroy();
    for (const c of this.clusters) await c.agents.destroy();
    for (const o of this.ovs) await o.stop();
    for (const d of this.devices.values()) await d.destroy();
    for (const h of this.hubs.values()) await h.destroy();
    await this.scc.destroy();
    await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One exchange with an echo-worker service from `from`: the greeting line. */
export async function greeting(from: NsWorker, host: string, port: number, timeoutMs = 3000): Promise<string> {
  const out = await from.call<string>('request', { host, port, line: 'hello', timeoutMs });
  return out.split('\n')[0]!;
}

export const answers = (from: NsWorker, host: string, port: number) => async (): Promise<boolean> => greeting(from, host, port).then(() => true, () => false);

/**
 * Once host:port answers, probes it from `from` every 100 ms (500 ms per attempt) while `event` runs and
 * until `recovered` holds, then 1.5 s more so a flap right after shows (and on to that flap's
 * end); the record and when the event started.
 */
export async function probeAround(from: NsWorker, host: string, port: number, event: () => Promise<void>, recovered: () => Promise<boolean>,
  timeoutMs = 60_000, localAddress?: string): Promise<{ record: [number, boolean][]; at: number }> {
  // An outage left over from what ran before is not this event's.
  await waitFor(`${host}:${port} to answer before the event`, recovered, timeoutMs, 100);
  await from.call('startProbe', { host, port, everyMs: 100, timeoutMs: 500, localAddress });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const at = Date.now();
    await event();
    await waitFor('traffic to come back', recovered, timeoutMs, 100);
    await new Promise((r) => setTimeout(r, 1500));
    // A second, shorter gap right after the recovery (seen once in ten hub restarts: one
    // probe unanswered 600 ms after the first answers) is recorded to its end, so that the
    // record ends on an answer unless traffic really did not come back.
    await pollUntil(async () => (await from.call<[number, boolean][]>('probeRecord')).at(-1)?.[1] === true, timeoutMs, 100);
    return { record: await from.call<[number, boolean][]>('stopProbe'), at };
  } catch (err) {
    await from.call('stopProbe').catch(() => undefined);
    throw err;
  }
}
