// Emulated nodes behind real NATs running the real binaries: the NAT lab (natlab.ts) for
// sites, routers and coturn, one etcd on the emulated internet, and per node
// warren-configgen (allocation, node.json) then warren-agent, each in the node's
// namespace. destroy() takes everything down, wireguard-go included. The host overlay is
// 172.20.0.0/16: the lab's site LANs are 10.k.0.0/24 and must not overlap it. Two clusters
// may share one NAT lab (SD-EWAN tests): the second gets its etcd on a public site of its
// own, and leaves the lab to its owner.
//
// With `auth`, etcd serves TLS with client-certificate authentication and the lab follows
// README's bootstrap (Security): a CA, the admin's certificate (CN=root, kept off the
// nodes), `warren-configgen admin init` at creation, and per node a certificate of its own
// (CN=its name, ca.crt/tls.crt/tls.key 0600 in its etcd/ directory) and `admin add-node
// NAME` before its configgen runs; the node's configgen and agent get that certificate
// and no other. Nodes are not gateway candidates then.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execRunner, type RunResult } from '../../lib/runner.js';
import { formatEndpoint } from '../../node-agent/nat/stun-address.js';
import { readStatus, type AgentStatus } from '../../node-agent/status.js';
import { EtcdServer } from './etcd.js';
import { EtcdIdentityPki, type NodeEtcdFiles } from './pki.js';
import { NatLab, type Site, type SiteKind } from './natlab.js';
import { run, waitFor } from './sh.js';

export const WARREN_AGENT = resolve('dist/bin/warren-agent');
export const WARREN_CONFIGGEN = resolve('dist/bin/warren-configgen');
const ETCD_ADDRESS = '192.0.2.10';
/** What warren-configgen carves every node's allocation from. */
export const POOL = { podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '172.20.0.0/16', mtu: 1380 } as const;

export interface AgentNode {
  name: string;
  kind: SiteKind;
  site: Site;
  dir: string;
  ifname: string;
  socket: string;
  hostAddress: string;
  podSubnet: string;
  /** The node's own etcd credential, with authentication on. */
  etcd: NodeEtcdFiles | undefined;
  /** warren-configgen's arguments (run in the node's namespace) and what it printed. */
  configgen: { args: string[]; output: string };
  process: ChildProcess | undefined;
  exited: Promise<void>;
}

export interface AgentLabOptions {
  /** etcd with TLS, client-certificate authentication and one identity per node (see the top of this file). */
  auth?: boolean;
}

/** The site as seen from its host number `host`: that host is its `host` and `hostAddress`. */
function onHost(site: Site, host: number): Site {
  const h = site.lan[host];
  if (!h) throw new Error(`site ${site.index} has no host ${host} (it has ${site.lan.length})`);
  return { ...site, host: h.host, hostAddress: h.address };
}

export class AgentLab {
  readonly nodes: AgentNode[] = [];
  /** Interface names are unique across the labs of this process: wireguard-go's sockets share one directory. */
  private static labs = 0;
  private readonly number = AgentLab.labs++;
  private constructor(readonly lab: NatLab, readonly etcd: EtcdServer, readonly dir: string, private readonly ownsLab: boolean,
    /** etcd's CA and the admin's certificate, with authentication on. */
    readonly pki: EtcdIdentityPki | undefined) {}

  /** A cluster on a NAT lab of its own, or on `shared` (which the caller destroys, after this cluster). */
  static async create(shared?: NatLab, options: AgentLabOptions = {}): Promise<AgentLab> {
    const lab = shared ?? await NatLab.create();
    let etcd: EtcdServer | undefined;
    let pki: EtcdIdentityPki | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'warren-agentlab-'));
    try {
      const site = shared ? await lab.addSite('public') : undefined;
      const host = site?.publicAddress ?? ETCD_ADDRESS;
      if (options.auth) pki = await EtcdIdentityPki.create([host]);
      etcd = await EtcdServer.start({ host, netns: site?.host.name ?? lab.turnNs.name, tls: pki?.etcdTls });
      const agents = new AgentLab(lab, etcd, dir, !shared, pki);
      if (pki) await agents.admin(['init', '--pod-cidr', POOL.podCIDR, '--node-bits', String(POOL.nodeBits), '--host-cidr', POOL.hostCIDR]);
      return agents;
    } catch (err) {
      await etcd?.destroy();
      pki?.destroy();
      rmSync(dir, { recursive: true, force: true });
      if (!shared) await lab.destroy();
      throw err;
    }
  }

  /** `warren-configgen admin ARGS` with the admin's certificate (CN=root), run beside etcd; throws on a non-zero exit. */
  async admin(args: readonly string[]): Promise<string> {
    if (!this.pki) throw new Error('the lab\'s etcd runs without authentication: there is no admin');
    const flags = ['--etcd-endpoints', this.etcd.endpoint, '--etcd-cacert', this.pki.ca, '--etcd-cert', this.pki.root.cert,
      '--etcd-key', this.pki.root.key, '--etcd-timeout', '20s'];
    return run('ip', ['netns', 'exec', this.etcd.netns!, WARREN_CONFIGGEN, 'admin', ...args, ...flags]);
  }

  /** etcdctl run on the node with the node's own certificate (authentication on); the exit status is the caller's to check. */
  etcdctlAs(node: AgentNode, args: readonly string[]): Promise<RunResult> {
    if (!node.etcd) throw new Error(`${node.name} has no etcd credential of its own: the lab's etcd runs without authentication`);
    const { caFile, certFile, keyFile } = node.etcd;
    return node.site.host.exec('etcdctl', [`--endpoints=${this.etcd.endpoint}`, '--dial-timeout=2s', '--command-timeout=5s',
      `--cacert=${caFile}`, `--cert=${certFile}`, `--key=${keyFile}`, ...args], { allowFailure: true, env: { ETCDCTL_API: '3' } });
  }

  /** Merges `fields` into the node's agent config (top level), e.g. a gateway section. */
  configure(node: AgentNode, fields: Record<string, unknown>): void {
    const path = join(node.dir, 'agent.yaml');
    writeFileSync(path, JSON.stringify({ ...(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>), ...fields }, null, 2));
  }

  /**
   * A site of `kind` with its node allocated by warren-configgen; the agent is not started
   * yet. `beforeConfiggen` may prepare the node first (e.g. start its OVS) and return extra
   * configgen flags. `on`: no new site, the node is host number `host` of an existing one
   * (NatLab.addSite's `hosts`); the node's `site` then has that host as its `host`.
   */
  async addNode(kind: SiteKind, name = `n${this.nodes.length + 1}`, beforeConfiggen?: (site: Site) => Promise<string[]>,
    options: { on?: { site: Site; host: number }; etcdEndpoint?: string } = {}): Promise<AgentNode> {
    const site = options.on ? onHost(options.on.site, options.on.host) : await this.lab.addSite(kind);
    // A site that lets only TCP 443 out reaches etcd at its front door (NatLab.frontDoor443).
    const etcdEndpoint = options.etcdEndpoint ?? this.etcd.endpoint;
    if (site.kind !== kind) throw new Error(`host ${options.on!.host} is on a ${site.kind} site, not ${kind}`);
    const extra = beforeConfiggen ? await beforeConfiggen(site) : [];
    const dir = join(this.dir, name);
    mkdirSync(join(dir, 'net.d'), { recursive: true });
    // README's bootstrap: the node's own certificate on the node, then the admin adds it.
    const etcdFiles = this.pki ? await this.pki.installFor(name, join(dir, 'etcd')) : undefined;
    if (etcdFiles) await this.admin(['add-node', name]);
    const etcdFlags = etcdFiles ? ['--etcd-cacert', etcdFiles.caFile, '--etcd-cert', etcdFiles.certFile, '--etcd-key', etcdFiles.keyFile] : [];
    const configgenArgs = [
      '--node-name', name, '--pod-cidr', POOL.podCIDR, '--node-bits', String(POOL.nodeBits), '--host-cidr', POOL.hostCIDR,
      '--etcd-endpoints', etcdEndpoint, '--etcd-timeout', '20s', '--state-dir', dir, '--cni-conf-dir', join(dir, 'net.d'),
      '--mtu', String(POOL.mtu), '--log-file', join(dir, 'cni.log'), '--ipam-data-dir', join(dir, 'ipam'), ...etcdFlags, ...extra,
    ];
    const configgenOutput = (await site.host.exec(WARREN_CONFIGGEN, configgenArgs)).stdout.trim();
    const allocation = JSON.parse(readFileSync(join(dir, 'node.json'), 'utf8')) as { hostAddress: string; podSubnet: string };
    // Unique across the machine: wireguard-go's control sockets share one directory.
    const ifname = `wg${process.pid.toString(36)}${this.number ? `l${this.number}` : ''}${this.nodes.length}`.slice(0, 15);
    const socket = join(dir, 'agent.sock');
    const { turn, turnTls, stunServers } = this.lab;
    writeFileSync(join(dir, 'agent.yaml'), JSON.stringify({
      nodeName: name, etcdEndpoints: etcdEndpoint, etcdTimeoutSeconds: 20, stateDir: dir, interface: ifname,
      ...(etcdFiles ? { etcdCACert: etcdFiles.caFile, etcdCert: etcdFiles.certFile, etcdKey: etcdFiles.keyFile } : {}),
      listenPort: 51820, probePort: 51821, stunServers: stunServers.slice(0, 2).map(formatEndpoint),
      turn: { server: formatEndpoint(turn.server), username: turn.username, password: turn.password,
        tls: { server: formatEndpoint(turnTls.server), serverName: turnTls.serverName, caFile: turnTls.caFile } },
      statusSocket: socket, reconcileSeconds: 5,
    }, null, 2), { mode: 0o600 }); // the TURN password inline: the agent refuses it readable by others
    const node: AgentNode = { name, kind, site, dir, ifname, socket, hostAddress: allocation.hostAddress, podSubnet: allocation.podSubnet,
      etcd: etcdFiles, configgen: { args: configgenArgs, output: configgenOutput }, process: undefined, exited: Promise.resolve() };
    this.nodes.push(node);
    return node;
  }

  /** Spawns the node's agent in its namespace, its output appended to agent.log; `env` replaces the environment. */
  spawnAgent(node: AgentNode, env?: NodeJS.ProcessEnv): ChildProcess {
    const log = openSync(join(node.dir, 'agent.log'), 'a');
    const child = spawn('ip', ['netns', 'exec', node.site.host.name, WARREN_AGENT, 'run', '--config', join(node.dir, 'agent.yaml')],
      { stdio: ['ignore', log, log], env });
    closeSync(log);
    node.process = child;
    node.exited = new Promise((r) => child.once('exit', () => r()));
    return child;
  }

  /** Starts (or restarts) the node's agent; resolves once it answers on its status socket. */
  async start(node: AgentNode, env?: NodeJS.ProcessEnv): Promise<void> {
    const child = this.spawnAgent(node, env);
    await waitFor(`${node.name}'s agent`, async () => {
      if (child.exitCode !== null) throw new Error(`${node.name}'s agent exited with ${child.exitCode}:\n${this.log(node).slice(-3000)}`);
      return readStatus(node.socket, 1000).then(() => true, () => false);
    }, 30_000, 100);
  }

  async stop(node: AgentNode): Promise<void> {
    node.process?.kill('SIGTERM');
    await node.exited;
    node.process = undefined;
  }

  status(node: AgentNode): Promise<AgentStatus> {
    return readStatus(node.socket);
  }

  log(node: AgentNode): string {
    try {
      return readFileSync(join(node.dir, 'agent.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** When (ms since the epoch) the node's agent first chose `path` for `peer`: its "peer path" log line's `since`. */
  pathChosenAt(node: AgentNode, peer: string, path: string): number | undefined {
    for (const line of this.log(node).split('\n')) {
      if (!line.includes('"peer path"')) continue;
      const j = JSON.parse(line) as { msg: string; peer?: string; path?: string; since?: string };
      if (j.msg === 'peer path' && j.peer === peer && j.path === path && j.since) return Date.parse(j.since);
    }
    return undefined;
  }

  /** One ping from the node to an address, over whatever path the agents chose. */
  async ping(from: AgentNode, to: string, timeoutSeconds = 1): Promise<boolean> {
    const r = await from.site.host.exec('ping', ['-c', '1', '-W', String(timeoutSeconds), to], { allowFailure: true });
    return r.exitCode === 0;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stop(n)));
    // The agent leaves its interface to the next agent by design: wireguard-go goes here.
    for (const n of this.nodes) await run('pkill', ['-f', `wireguard-go -f ${n.ifname}$`], { allowFailure: true });
    for (const n of this.nodes) await execRunner('rm', ['-f', `/var/run/wireguard/${n.ifname}.sock`], { allowFailure: true });
    await this.etcd.destroy();
    this.pki?.destroy();
    if (this.ownsLab) await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
