// Throwaway certificate authorities for tests, made with openssl: a CA per directory and the
// certificates it signs, every one with CN=<name> and its files <name>.crt and <name>.key
// (0600). One module, so that the tests' PKIs (etcd's, etcd's node identities, IKE's) are
// made one way. openssl keeps a CA's serial number in a file: certificates of one CA are
// issued one at a time (EtcdIdentityPki queues them).
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EtcdTls } from './etcd.js';
import { run } from './sh.js';

/** EC P-256 by default; RSA 2048 where the consumer has no ECDSA (charon here). */
export type KeyKind = 'ec' | 'rsa';

export interface Credential {
  cert: string;
  key: string;
}

const newKey = (kind: KeyKind): string[] =>
  (kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048']);

/** A self-signed CA `dir`/`name`.crt and .key, valid two days. */
export async function createCa(dir: string, name: string, kind: KeyKind = 'ec'): Promise<Credential> {
  const p = (file: string) => join(dir, file);
  await run('openssl', ['req', '-x509', ...newKey(kind), '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`)]);
  chmodSync(p(`${name}.key`), 0o600);
  return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
}

/**
 * A certificate with CN=`name` signed by `signer` (whose .crt and .key are in `dir`), with
 * the extensions `ext` (openssl's extfile lines): `dir`/`name`.crt and .key. etcd with
 * authentication on takes the CN as the user name.
 */
export async function issueCertificate(dir: string, name: string, signer: string, ext = 'extendedKeyUsage=clientAuth',
  kind: KeyKind = 'ec'): Promise<Credential> {
  const p = (file: string) => join(dir, file);
  await run('openssl', ['req', ...newKey(kind), '-nodes', '-subj', `/CN=${name}`, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`)]);
  chmodSync(p(`${name}.key`), 0o600);
  writeFileSync(p(`${name}.ext`), `${ext}\n`);
  await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${signer}.crt`), '-CAkey', p(`${signer}.key`), '-CAcreateserial',
    '-days', '2', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`)]);
  return { cert: p(`${name}.crt`), key: p(`${name}.key`) };
}

/** etcd's server certificate: serverAuth for `addresses` (and localhost), clientAuth for etcd's own checks. */
function serverExt(addresses: readonly string[]): string {
  return `subjectAltName=${[...addresses.map((a) => `IP:${a}`), 'DNS:localhost'].join(',')}\nextendedKeyUsage=serverAuth,clientAuth`;
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

/** A CA, a server certificate for `serverAddresses`, a client certificate (CN=client), and a rogue one from another CA. */
export async function makePki(serverAddresses: readonly string[] = ['127.0.0.1']): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-pki-'));
  try {
    const ca = await createCa(dir, 'ca');
    await createCa(dir, 'rogue-ca');
    const server = await issueCertificate(dir, 'server', 'ca', serverExt(serverAddresses));
    const client = await issueCertificate(dir, 'client', 'ca');
    const rogue = await issueCertificate(dir, 'rogue', 'rogue-ca');
    return { dir, ca: ca.cert, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key,
      rogueCert: rogue.cert, rogueKey: rogue.key };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A node's etcd credential as the node holds it (README, Security: /etc/warren/etcd). */
export interface NodeEtcdFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * etcd's PKI for node identities (README, Security, bootstrap): the CA, etcd's server
 * certificate, the admin's (CN=root), and one client certificate per node (CN=the node's
 * name), each issued on demand.
 */
export class EtcdIdentityPki {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string, readonly ca: string, readonly server: Credential, readonly root: Credential) {}

  static async create(serverAddresses: readonly string[] = ['127.0.0.1']): Promise<EtcdIdentityPki> {
    const dir = mkdtempSync(join(tmpdir(), 'warren-etcd-pki-'));
    try {
      const ca = await createCa(dir, 'ca');
      const server = await issueCertificate(dir, 'server', 'ca', serverExt(serverAddresses));
      return new EtcdIdentityPki(dir, ca.cert, server, await issueCertificate(dir, 'root', 'ca'));
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** What EtcdServer serves with; its etcdctl acts as root. */
  get etcdTls(): EtcdTls {
    return { caFile: this.ca, certFile: this.server.cert, keyFile: this.server.key, clientCertFile: this.root.cert, clientKeyFile: this.root.key };
  }

  /** A client certificate with CN=`name` (a node's, or one no etcd user is named after). */
  issue(name: string): Promise<Credential> {
    const next = this.queue.then(() => issueCertificate(this.dir, name, 'ca'));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Issues `name`'s certificate and puts the node's three files in `dir`: ca.crt, tls.crt, tls.key, each 0600. */
  async installFor(name: string, dir: string): Promise<NodeEtcdFiles> {
    const own = await this.issue(name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    for (const [from, to] of [[this.ca, files.caFile], [own.cert, files.certFile], [own.key, files.keyFile]] as const) {
      copyFileSync(from, to);
      chmodSync(to, 0o600);
    }
    return files;
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
