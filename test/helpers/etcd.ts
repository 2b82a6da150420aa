// A real etcd (Debian's etcd-server) per test: its own data directory and free ports on
// 127.0.0.1, optionally serving TLS with client-certificate authentication. It can be
// stopped and started again on the same ports and data, to test what clients do while
// it is gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execRunner } from '../../lib/runner.js';
import { run, waitFor } from './sh.js';

export interface EtcdTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** etcdctl's own credential (dump, etcdctl): the server's when not given, enough while authentication is off. */
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface EtcdStartOptions {
  /** Serve https and require client certificates signed by tls.caFile. */
  tls?: EtcdTls;
  /** The address to serve clients on (an emulated node reaches 127.0.0.1 of its own). */
  host?: string;
  /** Run inside this network namespace (e.g. the emulated internet), on ports 2379/2380. */
  netns?: string;
}

/** A port nobody listens on right now (the kernel's pick for an ephemeral bind). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class EtcdServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string, readonly host: string, readonly clientPort: number, readonly peerPort: number,
    readonly tls: EtcdTls | undefined, readonly netns?: string) {}

  /** Runs `file` in the server's namespace (the caller's own when it has none). */
  private inNs(file: string, args: string[]): [string, string[]] {
    return this.netns ? ['ip', ['netns', 'exec', this.netns, file, ...args]] : [file, args];
  }

  get endpoint(): string {
    return `${this.tls ? 'https' : 'http'}://${this.host}:${this.clientPort}`;
  }

  get log(): string {
    try {
      return readFileSync(join(this.dir, 'etcd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  static async start(options: EtcdStartOptions = {}): Promise<EtcdServer> {
    const dir = mkdtempSync(join(tmpdir(), 'warren-etcd-'));
    const host = options.host ?? '127.0.0.1';
    // A namespace of its own has every port free.
    const ports = options.netns ? [2379, 2380] : [await freePort(host), await freePort('127.0.0.1')];
    const etcd = new EtcdServer(dir, host, ports[0]!, ports[1]!, options.tls, options.netns);
    try {
      await etcd.resume();
    } catch (err) {
      await etcd.destroy();
      throw err;
    }
    return etcd;
  }

  /** Starts the server (again) on the same ports and data, and waits until it serves. */
  async resume(): Promise<void> {
    if (this.child) return;
    const scheme = this.tls ? 'https' : 'http';
    const client = `${scheme}://${this.host}:${this.clientPort}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const args = [
      '--name', 'test', '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`, '--initial-cluster-state', 'new',
    ];
    if (this.tls) {
      args.push('--cert-file', this.tls.certFile, '--key-file', this.tls.keyFile, '--client-cert-auth', '--trusted-ca-file', this.tls.caFile);
    }
    const log = openSync(join(this.dir, 'etcd.log'), 'a');
    // A clean environment: Debian's ETCD_* settings must not leak into a test server.
    const [file, fullArgs] = this.inNs('/usr/bin/etcd', args);
    const child = spawn(file, fullArgs, { stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/bin:/usr/sbin:/bin:/sbin' } });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => {
      if (this.child === child) this.child = undefined;
      resolve();
    }));
    await waitFor(`etcd on ${client}`, async () => {
      if (!this.child) throw new Error(`etcd exited while starting:\n${this.log.slice(-2000)}`);
      const [f, a] = this.inNs('etcdctl', [...this.etcdctlArgs(), 'endpoint', 'health']);
      return (await execRunner(f, a, { allowFailure: true })).exitCode === 0;
    }, 20_000, 50);
  }

  /** Stops the server (SIGTERM) and waits until the process is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    await this.exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  etcdctlArgs(): string[] {
    const args = [`--endpoints=${this.endpoint}`, '--dial-timeout=2s', '--command-timeout=5s'];
    if (this.tls) {
      const { caFile, certFile, keyFile, clientCertFile, clientKeyFile } = this.tls;
      args.push(`--cacert=${caFile}`, `--cert=${clientCertFile ?? certFile}`, `--key=${clientKeyFile ?? keyFile}`);
    }
    return args;
  }

  /** Runs etcdctl against this server; throws on a non-zero exit. */
  etcdctl(args: readonly string[]): Promise<string> {
    const [f, a] = this.inNs('etcdctl', [...this.etcdctlArgs(), ...args]);
    return run(f, a, { env: { ETCDCTL_API: '3' } });
  }

  /** Every key under `prefix` with its value. */
  async dump(prefix: string): Promise<Map<string, string>> {
    const out = await this.etcdctl(['get', '--prefix', prefix, '-w', 'json']);
    const doc = JSON.parse(out) as { kvs?: { key: string; value: string }[] };
    const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
    return new Map((doc.kvs ?? []).map((kv) => [b64(kv.key), b64(kv.value)]));
  }
}
