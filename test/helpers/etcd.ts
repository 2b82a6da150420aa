// A real etcd (Debian's etcd-server) per test: its own data directory and free ports on
// 127.0.0.1, optionally serving TLS with client-certificate authentication. It can be
// stopped and started again on the same ports and data, to test what clients do while
// it is gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execRunner } from '../../lib/runner.js';
import { run, waitFor } from './sh.js';

export interface EtcdTls {
  caFile: string;
  certFile: string;
  keyFile: string;
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
    if (this.tls) args.push(`--cacert=${this.tls.caFile}`, `--cert=${this.tls.certFile}`, `--key=${this.tls.keyFile}`);
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

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA etcd does not trust. */
  rogueCert: string;
  rogueKey: string;
}

/**
 * A certificate with CN=`name` signed by `signer` (whose .crt and .key are in `dir`), made
 * with openssl: `dir`/`name`.crt and .key. etcd with authentication on takes the CN as the
 * user name.
 */
export async function issueCertificate(dir: string, name: string, signer: string, ext = 'extendedKeyUsage=clientAuth'): Promise<{ cert: string; key: string }> {
  const p = (file: string) => join(dir, file);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`,
    '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`)]);
  writeFileSync(p(`${name}.ext`), `${ext}\n`);
  await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${signer}.crt`), '-CAkey', p(`${signer}.key`), '-CAcreateserial',
    '-days', '2', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`)]);
  return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
}

/** A CA, a server certificate for `serverAddresses`, and client certificates, made with openssl. */
export async function makePki(serverAddresses: readonly string[] = ['127.0.0.1']): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-pki-'));
  const p = (name: string) => join(dir, name);
  const openssl = (args: string[]) => run('openssl', args);
  const ca = async (name: string) => {
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`)]);
  };
  const leaf = (name: string, signer: string, ext: string) => issueCertificate(dir, name, signer, ext);
  await ca('ca');
  await ca('rogue-ca');
  const sans = [...serverAddresses.map((a) => `IP:${a}`), 'DNS:localhost'].join(',');
  await leaf('server', 'ca', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth`);
  await leaf('client', 'ca', 'extendedKeyUsage=clientAuth');
  await leaf('rogue', 'rogue-ca', 'extendedKeyUsage=clientAuth');
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
  };
}
