// The cluster's etcd and warren-configgen, run as the DaemonSet's init container runs it on
// each node: the built binary, a clean environment, the node's own directories.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execRunner } from '../../lib/runner.js';
import { EtcdServer } from '../../test/helpers/etcd.js';
import { mustVanish, onTeardown } from './teardown.js';

export const CONFIGGEN = resolve('dist/bin/warren-configgen');
export const POOL = { podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' };

export async function startEtcd(): Promise<EtcdServer> {
  const etcd = await EtcdServer.start();
  onTeardown('etcd', () => etcd.destroy());
  mustVanish('etcd', etcd.dir);
  return etcd;
}

/** etcd's revision: it moves with every write, so an unchanged revision means nothing was written. */
export async function etcdRevision(etcd: EtcdServer): Promise<number> {
  const [status] = JSON.parse(await etcd.etcdctl(['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number } } }[];
  return status!.Status.header.revision;
}

/** Runs the binary; throws with its stderr on a non-zero exit. */
export async function configgen(args: readonly string[]): Promise<string> {
  return (await execRunner(CONFIGGEN, args, { env: { PATH: process.env.PATH }, replaceEnv: true })).stdout.trimEnd();
}

export interface NodeAllocation { node: string; podSubnet: string; gateway: string; hostAddress: string; mtu: number }

/** One node's configgen: its flags, and where it writes (a temporary directory instead of /etc and /var). */
export class NodeConfig {
  readonly dir: string;
  readonly confDir: string;
  readonly stateDir: string;
  /** host-local's data directory (the conflist names it). */
  readonly ipamDir: string;
  readonly args: string[];

  constructor(readonly node: string, etcd: EtcdServer, options: { ovsdb?: string; mtu: number }) {
    this.dir = mkdtempSync(join(tmpdir(), `warren-demo-${node}-`));
    onTeardown(`${node} directories`, () => rmSync(this.dir, { recursive: true, force: true }));
    mustVanish(`${node} directories`, this.dir);
    this.confDir = join(this.dir, 'net.d');
    this.stateDir = join(this.dir, 'state');
    this.ipamDir = join(this.dir, 'ipam');
    this.args = ['--node-name', node, '--pod-cidr', POOL.podCIDR, '--node-bits', String(POOL.nodeBits), '--host-cidr', POOL.hostCIDR,
      '--mtu', String(options.mtu), '--etcd-endpoints', etcd.endpoint, '--cni-conf-dir', this.confDir, '--state-dir', this.stateDir,
      '--ipam-data-dir', this.ipamDir, '--log-file', join(this.dir, 'cni.log'), ...(options.ovsdb ? ['--ovsdb', options.ovsdb] : [])];
  }

  get conflistPath(): string { return join(this.confDir, '10-warren.conflist'); }
  get nodeFilePath(): string { return join(this.stateDir, 'node.json'); }

  run(): Promise<string> { return configgen(this.args); }
  conflist(): Record<string, unknown> { return JSON.parse(readFileSync(this.conflistPath, 'utf8')) as Record<string, unknown>; }
  allocation(): NodeAllocation { return JSON.parse(readFileSync(this.nodeFilePath, 'utf8')) as NodeAllocation; }

  /** Content, inode and modification time of both files: equal fingerprints mean untouched files. */
  fingerprint(): string {
    return JSON.stringify([this.conflistPath, this.nodeFilePath].map((f) => {
      const s = statSync(f);
      return [readFileSync(f, 'utf8'), s.ino, s.mtimeMs];
    }));
  }
}
