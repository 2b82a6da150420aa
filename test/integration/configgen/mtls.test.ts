// etcd with client-certificate authentication (certificates made with openssl): the
// binary succeeds with the right certificates and fails clearly without them.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../../helpers/etcd.js';
import { makePki, type TestPki } from '../../helpers/pki.js';
import { rmSync } from 'node:fs';
import { configgen, NodeDirs, POOL, requireBinary } from './run.js';

let pki: TestPki;
let etcd: EtcdServer;
let dirs: NodeDirs;
let made: NodeDirs[] = [];

beforeAll(async () => {
  requireBinary();
  pki = await makePki();
  etcd = await EtcdServer.start({ tls: { caFile: pki.ca, certFile: pki.serverCert, keyFile: pki.serverKey } });
});
afterAll(async () => {
  await etcd?.destroy();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});
afterEach(() => {
  for (const d of made) d.destroy();
  made = [];
});

function args(tls: string[]): string[] {
  dirs = new NodeDirs();
  made.push(dirs);
  return ['--etcd-endpoints', etcd.endpoint, '--node-name', 'node-a', '--cni-conf-dir', dirs.confDir, '--state-dir', dirs.stateDir,
    '--mtu', '1420', '--etcd-timeout', '2s', ...POOL, ...tls];
}

describe('etcd over mTLS', () => {
  it('allocates with the CA and a client certificate, given as flags or environment', async () => {
    const r = await configgen(args(['--etcd-cacert', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey]));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(dirs.nodeFile()).toMatchObject({ node: 'node-a' });
    const list = await configgen(['list', '--etcd-endpoints', '127.0.0.1:' + etcd.clientPort],
      { WARREN_ETCD_CACERT: pki.ca, WARREN_ETCD_CERT: pki.clientCert, WARREN_ETCD_KEY: pki.clientKey });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/\nnode-a +10\.244\./);
  });

  it('fails clearly without a client certificate', async () => {
    const r = await configgen(args(['--etcd-cacert', pki.ca]));
    expect(r.exitCode).toBe(3);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^warren-configgen: etcd at ${etcd.endpoint} unreachable for 2\\.\\d s .*bad certificate.*` +
      '\\(the TLS handshake failed: check --etcd-cacert, --etcd-cert and --etcd-key\\)$'));
    expect(dirs.wroteNothing()).toBe(true);
  });

  it('fails clearly with a client certificate from another CA', async () => {
    const r = await configgen(args(['--etcd-cacert', pki.ca, '--etcd-cert', pki.rogueCert, '--etcd-key', pki.rogueKey]));
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/unreachable for 2\.\d s .*\(the TLS handshake failed: check --etcd-cacert, --etcd-cert and --etcd-key\)\n$/);
    expect(dirs.wroteNothing()).toBe(true);
  });

  it('fails clearly when talking plain HTTP to a TLS etcd', async () => {
    const r = await configgen(args([]).map((a) => a.replace('https://', 'http://')));
    expect(r.exitCode).toBe(3);
    expect(dirs.wroteNothing()).toBe(true);
  });

  it('refuses unreadable certificate files and a certificate without its key before contacting etcd', async () => {
    const missing = await configgen(args(['--etcd-cacert', '/nonexistent/ca.crt']));
    expect([missing.exitCode, missing.stderr]).toEqual([2, expect.stringMatching(/^warren-configgen: etcd CA certificate \/nonexistent\/ca.crt cannot be read: ENOENT/)]);
    const lone = await configgen(args(['--etcd-cacert', pki.ca, '--etcd-cert', pki.clientCert]));
    expect([lone.exitCode, lone.stderr]).toEqual([2, 'warren-configgen: etcd client certificate and key go together: give both --etcd-cert and --etcd-key, or neither\n']);
  });
});
