// A real Kubernetes cluster of emulated nodes behind the NAT lab's routers, built the way
// the README tells users to: on every node Open vSwitch, containerd and the kubelet's unit;
// warren-configgen (node.json only) and warren-agent as a systemd-style service bring up
// the host overlay; `kubeadm init` on the first node advertises the API server on its
// host-overlay address and every other node runs `kubeadm join` over the overlay. Warren's
// etcd (mTLS) and coturn (REST API: use-auth-secret) stand on the emulated internet, and
// until Kubernetes runs the Deployment warren-turn-issuer, the admin runs the issuer by hand
// beside etcd (the bootstrap issuer), so that relayed pairs meet before Kubernetes exists.
// The DaemonSet is applied by the test itself (applyWarren), so that it can time and check
// the rollout.
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { formatEndpoint } from '../../../node-agent/nat/stun-address.js';
import { EtcdServer } from '../etcd.js';
import { EtcdIdentityPki } from '../pki.js';
import { NatLab, type SiteKind } from '../natlab.js';
import type { NodeEtcdFiles } from '../pki.js';
import { run, waitFor } from '../sh.js';
import { importImages, startContainerd } from './containerd.js';
import { caCertHash, kubeadmInit, kubeadmJoin } from './kubeadm.js';
import { KubeNode, type Daemon } from './kube-node.js';
import { agentConfigOf, configValue, readManifest } from './manifest.js';

const ETCD_ADDRESS = '192.0.2.10';
/** coturn's static-auth-secret: the Secret warren-turn and the bootstrap issuer hold it, no node does. */
export const TURN_SECRET = 'kube-rest-secret';
const KUBELET_UNIT = resolve('test/helpers/kube/kubelet-unit.sh');
const DIST = resolve('dist/bin');
/** Machine-wide sysctls a kubelet sets (TESTBED.md): put back when the cluster goes. */
const KUBELET_SYSCTLS = ['kernel.panic', 'kernel.panic_on_oops', 'vm.overcommit_memory'];

export interface KubeTools {
  /** Directory with kubeadm, kubelet, kubectl, crictl. */
  bin: string;
  /** OCI archives every node's containerd imports. */
  archives: string[];
  sandboxImage: string;
  /** The warren-node image reference the manifest is given. */
  warrenImage: string;
  /** busybox, for test pods. */
  testImage: string;
  /** The etcd image kubeadm's static pod runs (tagged with the etcd version it holds). */
  etcdImage: string;
}

export interface NodeSpec {
  name: string;
  kind: SiteKind;
}

export interface ClusterNode extends KubeNode {
  hostAddress: string;
  podSubnet: string;
  agent?: Daemon;
  kubelet?: Daemon;
}

/** The TURN issuer's files as its admin holds them: coturn's secret (0600) and its etcd certificate (CN=warren-turn-issuer). */
export interface IssuerFiles extends NodeEtcdFiles {
  secretFile: string;
}

/** `warren-configgen admin turn-issuer` run by hand beside etcd, before Kubernetes runs the Deployment. */
export interface BootstrapIssuer {
  pid: number;
  log: string;
  exited: Promise<number | null>;
  running(): boolean;
}

export class KubeCluster {
  readonly nodes: ClusterNode[] = [];
  manifest = '';
  issuerFiles!: IssuerFiles;
  bootstrapIssuer: BootstrapIssuer | undefined;
  private sysctls = new Map<string, string>();

  private constructor(readonly tools: KubeTools, readonly lab: NatLab, readonly pki: EtcdIdentityPki, readonly etcd: EtcdServer, readonly dir: string) {}

  get cp(): ClusterNode {
    return this.nodes[0]!;
  }

  get path(): string {
    return `${this.tools.bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
  }

  /** The lab, etcd, and every node up to a joined (not yet Ready) Kubernetes node. */
  static async create(tools: KubeTools, specs: readonly NodeSpec[]): Promise<KubeCluster> {
    const lab = await NatLab.create();
    let cluster: KubeCluster | undefined;
    try {
      const pki = await EtcdIdentityPki.create([ETCD_ADDRESS]);
      let etcd: EtcdServer;
      try {
        etcd = await EtcdServer.start({ host: ETCD_ADDRESS, netns: lab.turnNs.name, tls: pki.etcdTls });
      } catch (err) {
        pki.destroy();
        throw err;
      }
      cluster = new KubeCluster(tools, lab, pki, etcd, mkdtempSync(join(tmpdir(), 'warren-kube-')));
      for (const k of KUBELET_SYSCTLS) cluster.sysctls.set(k, (await run('sysctl', ['-n', k])).trim());
      // Step 2: coturn with its REST API; the issuer's secret and certificate; the issuer itself.
      await lab.useTurnSecret(TURN_SECRET);
      await cluster.prepareIssuerFiles();
      cluster.startBootstrapIssuer();
      cluster.manifest = readManifest({
        image: tools.warrenImage,
        etcdEndpoints: etcd.endpoint,
        stunServers: lab.stunServers.slice(0, 2).map(formatEndpoint),
        turnServer: formatEndpoint(lab.turn.server),
      });
      for (const spec of specs) await cluster.addNode(spec);
      await cluster.init();
      for (const n of cluster.nodes.slice(1)) await cluster.join(n);
      await waitFor('every node registered', async () => {
        const names = (await cluster!.kubectl(['get', 'nodes', '-o', 'name'])).split('\n').filter(Boolean);
        return names.length === specs.length;
      }, 60_000, 500);
      return cluster;
    } catch (err) {
      if (cluster) await cluster.destroy();
      else await lab.destroy();
      throw err;
    }
  }

  /** A host behind a NAT of `kind`, prepared as the README's steps 1 to 4 say. */
  private async addNode(spec: NodeSpec): Promise<ClusterNode> {
    const site = await this.lab.addSite(spec.kind);
    const kube = await KubeNode.create(spec.name, site, join(this.dir, spec.name));
    const node = Object.assign(kube, { hostAddress: '', podSubnet: '' }) as ClusterNode;
    this.nodes.push(node);
    await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await node.exec('/usr/share/openvswitch/scripts/ovs-ctl', ['start', '--system-id=random']);
    // Step 1: the reference plugins (kubeadm's kubernetes-cni package ships them).
    for (const p of ['host-local', 'portmap', 'loopback']) copyFileSync(`/usr/lib/cni/${p}`, join(node.root, 'opt-cni-bin', p));
    await startContainerd(node, this.tools.sandboxImage);
    await importImages(node, this.tools.archives);
    node.kubelet = node.spawn('kubelet', 'sh', [KUBELET_UNIT], { PATH: this.path });
    await this.bootstrapOverlay(node);
    return node;
  }

  /** Steps 2 to 4: allocation (node.json only: the DaemonSet writes the conflist) and the systemd-style agent. */
  private async bootstrapOverlay(node: ClusterNode): Promise<void> {
    // The node's own certificate (CN = its name) in /etc/warren/etcd, where the DaemonSet's
    // hostPath takes it from. etcd's authentication stays off here (the NAT matrix and the
    // agents' identity test run with it on).
    await this.pki.installFor(node.name, join(node.root, 'etc-warren', 'etcd'));
    await this.configgen(node, ['--no-conflist', '--node-name', node.name,
      '--pod-cidr', configValue(this.manifest, 'pod-cidr'), '--node-bits', configValue(this.manifest, 'node-bits'),
      '--host-cidr', configValue(this.manifest, 'host-cidr')]);
    const allocation = JSON.parse(readFileSync(join(node.root, 'var-lib-warren', 'node.json'), 'utf8')) as { hostAddress: string; podSubnet: string };
    node.hostAddress = allocation.hostAddress;
    node.podSubnet = allocation.podSubnet;

    // The DaemonSet's agent config (turn.issued: no TURN password on the node), files at
    // the same paths: only the node's name is added.
    writeFileSync(join(node.root, 'etc-warren', 'agent.yaml'), YAML.stringify({ ...agentConfigOf(this.manifest), nodeName: node.name }));
    await this.startSystemdAgent(node);
  }

  /** coturn's secret in a 0600 file and the issuer's etcd certificate, in the admin's directory. */
  private async prepareIssuerFiles(): Promise<void> {
    const dir = join(this.dir, 'turn-issuer');
    mkdirSync(dir, { mode: 0o700 });
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${TURN_SECRET}\n`, { mode: 0o600 });
    this.issuerFiles = { secretFile, ...await this.pki.installFor('warren-turn-issuer', join(dir, 'etcd')) };
  }

  /** The issuer as the admin runs it before Kubernetes does (default TTL), in etcd's namespace. */
  private startBootstrapIssuer(): void {
    const f = this.issuerFiles;
    const log = join(this.dir, 'turn-issuer', 'bootstrap-issuer.log');
    const fd = openSync(log, 'a');
    const child = spawn('ip', ['netns', 'exec', this.lab.turnNs.name, join(DIST, 'warren-configgen'), 'admin', 'turn-issuer',
      '--turn-secret-file', f.secretFile, '--etcd-endpoints', this.etcd.endpoint,
      '--etcd-cacert', f.caFile, '--etcd-cert', f.certFile, '--etcd-key', f.keyFile], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    let done = false;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { done = true; resolve(code); }));
    this.bootstrapIssuer = { pid: child.pid!, log, exited, running: () => !done };
  }

  /** The hand-over's last step: the Deployment issues from now on. The issuer's exit status (143 on SIGTERM). */
  async stopBootstrapIssuer(): Promise<number | null> {
    const b = this.bootstrapIssuer;
    if (!b) return null;
    if (b.running()) process.kill(b.pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(b.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
    const code = await b.exited;
    clearTimeout(timer);
    this.bootstrapIssuer = undefined;
    return code;
  }

  /** warren-agent as daemonset/warren-agent.service runs it. */
  async startSystemdAgent(node: ClusterNode): Promise<void> {
    node.agent = node.spawn('warren-agent', join(DIST, 'warren-agent'), ['run', '--config', '/etc/warren/agent.yaml']);
    await waitFor(`${node.name}'s systemd-style agent`, async () => {
      if (!node.agent!.running()) throw new Error(`${node.name}'s agent exited:\n${node.logOf('warren-agent').slice(-3000)}`);
      return (await node.exec(join(DIST, 'warren-agent'), ['status', '--json'], { allowFailure: true })).exitCode === 0;
    }, 30_000, 100);
  }

  /** `systemctl stop warren-agent`: the agent goes, wireguard-go stays (KillMode=process). */
  async stopSystemdAgent(node: ClusterNode): Promise<void> {
    if (node.agent) await node.stopDaemon(node.agent);
    node.agent = undefined;
  }

  /** `systemctl stop kubelet`. */
  async stopKubelet(node: ClusterNode): Promise<void> {
    if (node.kubelet) await node.stopDaemon(node.kubelet);
    node.kubelet = undefined;
  }

  /** Runs warren-configgen on a node with the node's etcd credentials (the README's admin steps). */
  async configgen(node: ClusterNode, args: readonly string[]): Promise<string> {
    const r = await node.exec(join(DIST, 'warren-configgen'), [...args, ...this.etcdFlags()]);
    return r.stdout;
  }

  private etcdFlags(): string[] {
    return ['--etcd-endpoints', this.etcd.endpoint, '--etcd-cacert', '/etc/warren/etcd/ca.crt',
      '--etcd-cert', '/etc/warren/etcd/tls.crt', '--etcd-key', '/etc/warren/etcd/tls.key'];
  }


  async overlayPing(from: ClusterNode, to: string): Promise<boolean> {
    return (await from.exec('ping', ['-c', '1', '-W', '1', to], { allowFailure: true })).exitCode === 0;
  }

  /** Step 5: kubeadm init on the first node, advertised on its host-overlay address. */
  private async init(): Promise<void> {
    const cp = this.cp;
    await kubeadmInit(cp, cp.hostAddress, this.tools.etcdImage, this.path);
  }

  /** Step 6: kubeadm join over the host overlay, once the overlay reaches the API server. */
  private async join(node: ClusterNode): Promise<void> {
    await waitFor(`${node.name} reaching ${this.cp.hostAddress} over the host overlay`, () => this.overlayPing(node, this.cp.hostAddress), 30_000, 200);
    await kubeadmJoin(node, node.hostAddress, `${this.cp.hostAddress}:6443`, await caCertHash(this.cp), this.path);
  }

  /** kubectl as the cluster's admin, from the control-plane node (the API is on the overlay). */
  async kubectl(args: readonly string[], input?: string): Promise<string> {
    const r = await this.cp.exec('kubectl', ['--kubeconfig', '/etc/kubernetes/admin.conf', ...args], { env: { PATH: this.path }, input, timeoutMs: 120_000 });
    return r.stdout;
  }

  async kubectlJson<T>(args: readonly string[]): Promise<T> {
    return JSON.parse(await this.kubectl([...args, '-o', 'json'])) as T;
  }

  /**
   * The Secrets warren.yaml's header asks for, created from the admin's files as it says
   * (the TURN issuer's only: the nodes' etcd credentials are their own, on the hosts), then
   * the manifest itself.
   */
  async applyWarren(manifest = this.manifest): Promise<void> {
    await this.kubectl(['apply', '-f', '-'], manifest.split('\n---\n').find((d) => d.includes('kind: Namespace')) ?? '');
    const f = this.issuerFiles;
    await this.kubectl(['-n', 'warren-system', 'create', 'secret', 'generic', 'warren-turn', `--from-file=secret=${f.secretFile}`]);
    await this.kubectl(['-n', 'warren-system', 'create', 'secret', 'generic', 'warren-turn-issuer-etcd',
      `--from-file=ca.crt=${f.caFile}`, `--from-file=tls.crt=${f.certFile}`, `--from-file=tls.key=${f.keyFile}`]);
    await this.kubectl(['apply', '-f', '-'], manifest);
  }

  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    await this.stopBootstrapIssuer().catch((e: unknown) => errors.push(e));
    for (const n of [...this.nodes].reverse()) await n.destroy().catch((e: unknown) => errors.push(e));
    await this.etcd.destroy().catch((e: unknown) => errors.push(e));
    await this.lab.destroy().catch((e: unknown) => errors.push(e));
    for (const [k, v] of this.sysctls) await run('sysctl', ['-qw', `${k}=${v}`]).catch((e: unknown) => errors.push(e));
    this.pki.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    if (errors.length) throw new Error(`tearing the cluster down: ${errors.map(String).join('; ')}`);
  }
}
