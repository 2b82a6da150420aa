// The SCC client against the emulated SCC over real HTTP on 127.0.0.1: the whole Mode-2
// registration, run twice (the second time through SCC's 409s), an SCC that is down or
// answers 5xx (retried on an injected clock, so waits cost nothing but the HTTP is real),
// a 4xx that is not retried, SCC's pending-connection quirk, and certificates that
// openssl verifies against the CAs SCC hands out.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../../../lib/etcd/retry.js';
import { fakeClock } from '../../../helpers/fake-clock.js';
import {
  SccClient, SccConflictError, SccHttpError, SccPendingConnectionError, SccProtocolError, SccRegistrationError, SccTimeoutError,
  SccUnreachableError, register, type RegisterOptions, type RegisterRequest,
} from '../../../../node-agent/gateway/scc/client.js';
import { REGISTRATION_FILE, setupFromRegistration, setupFromScc } from '../../../../node-agent/gateway/scc/registration.js';
import type { GatewaySettings } from '../../../../node-agent/config.js';
import { makePki } from '../../../helpers/pki.js';
import { SccPki, SccServer } from '../../../helpers/sdewan/scc-server.js';
import { run } from '../../../helpers/sh.js';

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters:
- name: edge-1
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: ${Buffer.from('not a real CA').toString('base64')}
users:
- name: admin
  user:
    token: abc123
contexts:
- name: admin@edge-1
  context: { cluster: edge-1, user: admin }
current-context: admin@edge-1
`;

/** Deterministic backoff: 500, 1000, 2000, 4000, 5000 ms... */
const BACKOFF = { initialMs: 500, maxMs: 5_000, random: () => 1 };


let pki: SccPki;
let scc: SccServer;
let tmp: string;

beforeAll(async () => {
  pki = await SccPki.create();
}, 60_000);
afterAll(() => pki?.destroy());
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'warren-scc-test-'));
});
afterEach(async () => {
  await scc?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

/** What an operator does with curl; every status checked. */
async function operator(method: string, path: string, body: unknown, status: number): Promise<unknown> {
  const res = await fetch(`${scc.url}/scc/v1${path}`, { method, body: JSON.stringify(body) });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBe(status);
  return text ? JSON.parse(text) : undefined;
}

/** An overlay with a proposal, data and provider pools, and hubs (hub-b reachable on its second address only). */
async function startScc(options: { hubs?: string[]; providerRange?: boolean } = {}): Promise<void> {
  scc = await SccServer.start({ pki, hooks: { hubApiReachable: (_hub, ip) => ip !== '203.0.113.5' } });
  await operator('POST', '/overlays', { metadata: { name: 'ov1' } }, 201);
  await operator('POST', '/overlays/ov1/proposals', { metadata: { name: 'proposal1' }, spec: { encryption: 'aes256', hash: 'sha256', dhGroup: 'modp4096' } }, 201);
  await operator('POST', '/overlays/ov1/ipranges', { metadata: { name: 'data' }, spec: { subnet: '10.10.0.0', minIp: 1, maxIp: 9 } }, 201);
  if (options.providerRange ?? true) await operator('POST', '/provider/ipranges', { metadata: { name: 'control' }, spec: { subnet: '10.9.0.0', minIp: 5, maxIp: 20 } }, 201);
  const publicIps: Record<string, string[]> = { 'hub-a': ['192.0.2.10'], 'hub-b': ['203.0.113.5', '203.0.113.6'] };
  for (const hub of options.hubs ?? ['hub-a']) {
    await operator('POST', '/overlays/ov1/hubs', { metadata: { name: hub }, spec: { publicIps: publicIps[hub], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } }, 201);
  }
}

function client(): SccClient {
  return new SccClient({ url: scc.url, overlay: 'ov1' });
}

function request(over: Partial<RegisterRequest> = {}): RegisterRequest {
  return { device: 'edge-1', kubeConfig: KUBECONFIG, hubs: ['hub-a'], connect: true, ...over };
}

function options(clock: Clock, over: Partial<RegisterOptions> = {}): RegisterOptions {
  return { timeoutMs: 60_000, clock, backoff: BACKOFF, ...over };
}

/** The requests SCC saw that change something, from index `from` on. */
function writes(from = 0): string[] {
  return scc.requests.slice(from).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path.replace('/scc/v1/overlays/ov1', '')} ${r.status}`);
}

async function openssl(args: string[]): Promise<string> {
  return (await run('openssl', args)).trim();
}

describe('SCC client against the emulated SCC', () => {
  it('registers a NATed device end to end and returns real certificates, data OIPs and hub addresses', async () => {
    await startScc({ hubs: ['hub-a', 'hub-b'] });
    let probes = 0;
    const deployed: string[] = [];
    scc.hooks.deviceApiReachable = () => ++probes > 2; // the control tunnel comes up at SCC's third look
    scc.hooks.onHubDeviceConnection = (hub, device, oip) => void deployed.push(`${hub} ${device} ${oip}`);
    const seeded = scc.requests.length;
    const clock = fakeClock();

    const r = await register(client(), request({ hubs: ['hub-a', 'hub-b'] }), options(clock));

    expect(clock.sleeps).toEqual([500, 1000]); // twice "pending", then SCC saw the device's API
    expect(writes(seeded)).toEqual(['POST /certificates 201', 'POST /devices 201', 'POST /hubs/hub-a/devices 201', 'POST /hubs/hub-b/devices 201']);
    expect(deployed).toEqual(['hub-a edge-1 10.10.0.1', 'hub-b edge-1 10.10.0.2']);
    expect(r).toMatchObject({
      mode: 2, deviceIp: '10.9.0.5',
      dataOips: { 'hub-a': '10.10.0.1', 'hub-b': '10.10.0.2' },
      hubPublicIps: { 'hub-a': ['192.0.2.10'], 'hub-b': ['203.0.113.5', '203.0.113.6'] },
      hubEndpoints: { 'hub-a': '192.0.2.10', 'hub-b': '203.0.113.6' },
    });
    // SCC rewrote the kubeconfig for the OIP once it could reach the device.
    const stored = Buffer.from(scc.peekDevice('ov1', 'edge-1')!.spec.kubeConfig, 'base64').toString();
    expect(stored).toContain('server: https://10.9.0.5:6443');

    // The certificates are real: openssl verifies the device's against root + overlay CA.
    const file = (name: string, text: string) => {
      writeFileSync(join(tmp, name), text);
      return join(tmp, name);
    };
    const cas = file('cas.pem', r.caRoot + r.caOverlay);
    const cert = file('cert.pem', r.certificate);
    const key = file('key.pem', r.key);
    expect(await openssl(['verify', '-CAfile', cas, cert])).toBe(`${cert}: OK`);
    expect(await openssl(['x509', '-noout', '-subject', '-in', cert])).toBe('subject=CN = device-edge-1-cert');
    expect(await openssl(['x509', '-noout', '-text', '-in', cert])).toContain('Public-Key: (2048 bit)');
    expect(await openssl(['rsa', '-noout', '-modulus', '-in', key])).toBe(await openssl(['x509', '-noout', '-modulus', '-in', cert]));
    expect(r.caRoot).toBe(readFileSync(scc.caFiles('ov1').root, 'utf8'));
    expect(r.caOverlay).toBe(readFileSync(scc.caFiles('ov1').overlay, 'utf8'));
    expect(await openssl(['x509', '-noout', '-subject', '-in', scc.caFiles('ov1').overlay])).toBe('subject=CN = ov1-cert');
  });

  it('is idempotent: a second run goes through SCC\'s 409s and returns the same', async () => {
    await startScc();
    const first = await register(client(), request(), options(fakeClock()));
    const seeded = scc.requests.length;

    const second = await register(client(), request(), options(fakeClock()));

    expect(second).toEqual(first);
    expect(writes(seeded)).toEqual(['POST /certificates 409', 'POST /devices 409']);
    expect(scc.requests.slice(seeded).map((q) => `${q.method} ${q.path.replace('/scc/v1/overlays/ov1', '')}`)).toContain('GET /certificates/device-edge-1-cert');
  });

  it('waits for an operator to connect the hub when told not to do it itself', async () => {
    await startScc();
    const clock = fakeClock(async (n) => {
      if (n === 2) await operator('POST', '/overlays/ov1/hubs/hub-a/devices', { metadata: { name: 'by-hand' }, spec: { device: 'edge-1' } }, 201);
    });
    const messages: string[] = [];

    const r = await register(client(), request({ connect: false }), options(clock, { onRetry: (m) => messages.push(m) }));

    expect(r.dataOips).toEqual({ 'hub-a': '10.10.0.1' });
    expect(writes().filter((w) => w.startsWith('POST /hubs/hub-a/devices'))).toHaveLength(1); // the operator's
    expect(messages[0]).toBe('SCC registration of edge-1: no connection between hub hub-a and device edge-1 in overlay ov1 yet '
      + '(POST .../hubs/hub-a/devices creates it); retry 1 in 500 ms');
  });

  it('retries with backoff while SCC is unreachable, and carries on once it is back', async () => {
    await startScc();
    await scc.closeListener();
    const clock = fakeClock(async (n) => {
      if (n === 3) await scc.reopenListener();
    });
    const messages: string[] = [];

    const r = await register(client(), request(), options(clock, { onRetry: (m) => messages.push(m) }));

    expect(r.dataOips).toEqual({ 'hub-a': '10.10.0.1' });
    expect(clock.sleeps).toEqual([500, 1000, 2000]);
    expect(messages[0]).toMatch(new RegExp(`^SCC registration of edge-1: POST ${scc.url}/scc/v1/overlays/ov1/certificates: SCC unreachable: ECONNREFUSED .*; retry 1 in 500 ms$`));
  });

  it('gives up on an SCC that stays unreachable, naming the URL and the time spent', async () => {
    await startScc();
    await scc.closeListener();
    const clock = fakeClock();

    const err = await register(client(), request(), options(clock, { timeoutMs: 10_000 })).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccUnreachableError);
    expect((err as Error).message).toMatch(new RegExp(`^POST ${scc.url}/scc/v1/overlays/ov1/certificates: SCC unreachable: ECONNREFUSED .*\\(gave up after 10\\.0 s and 6 attempts\\)$`));
    expect(clock.sleeps).toEqual([500, 1000, 2000, 4000, 2500]);
  });

  it('rides out transient 5xx answers', async () => {
    await startScc();
    scc.failNext(2, 503, 'upstream rsync unavailable');
    const clock = fakeClock();
    const messages: string[] = [];

    const r = await register(client(), request(), options(clock, { onRetry: (m) => messages.push(m) }));

    expect(r.dataOips).toEqual({ 'hub-a': '10.10.0.1' });
    expect(clock.sleeps).toEqual([500, 1000]);
    expect(messages[0]).toContain(`POST ${scc.url}/scc/v1/overlays/ov1/certificates answered 503: upstream rsync unavailable`);
  });

  it('surfaces SCC\'s message when a 500 persists, without redoing the steps already done', async () => {
    await startScc({ providerRange: false }); // no pool for Mode-2 control OIPs
    const clock = fakeClock();

    const err = await register(client(), request(), options(clock, { timeoutMs: 10_000 })).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccHttpError);
    expect(err).toMatchObject({ status: 500, sccMessage: 'Fail to allocate overlay ip for edge-1: No available ip', url: `${scc.url}/scc/v1/overlays/ov1/devices` });
    expect((err as Error).message).toMatch(/answered 500: Fail to allocate overlay ip for edge-1: No available ip \(gave up after 10\.0 s and 6 attempts\)$/);
    expect(writes().filter((w) => w.startsWith('POST /certificates'))).toEqual(['POST /certificates 201']);
  });

  it('surfaces a 4xx with SCC\'s message and does not retry it', async () => {
    await startScc();
    const seeded = scc.requests.length;
    const clock = fakeClock();

    const err = await register(client(), request({ device: 'edge 1' }), options(clock)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccHttpError);
    expect((err as Error).message).toBe(`POST ${scc.url}/scc/v1/overlays/ov1/certificates answered 422: Input fields check error: [Name(hostname_rfc1123:)]`);
    expect(clock.sleeps).toEqual([]);
    expect(scc.requests.length - seeded).toBe(1);
  });

  it('detects SCC\'s empty 201 for a connection to a pending device, which creates nothing', async () => {
    await startScc();
    let reachable = false;
    scc.hooks.deviceApiReachable = () => reachable;
    const c = client();
    await c.ensureCertificate('edge-1');
    await c.ensureDevice({ device: 'edge-1', kubeConfig: KUBECONFIG });

    const err = await c.connectHub('hub-a', 'edge-1').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccPendingConnectionError);
    expect((err as Error).message).toBe(`POST ${scc.url}/scc/v1/overlays/ov1/hubs/hub-a/devices answered 201 with an empty object: `
      + 'SCC created no connection because device edge-1 is not registered yet (RegStatus not "success")');
    expect(await c.deviceConnections('edge-1')).toEqual([]);
    expect((await c.device('edge-1')).status.DataIps).toEqual({});

    reachable = true;
    expect(await c.connectHub('hub-a', 'edge-1')).toEqual({ created: true });
    expect(await c.connectHub('hub-a', 'edge-1')).toEqual({ created: false }); // SCC's 500 "already created"
    expect((await c.deviceConnections('edge-1')).map((x) => [x.metadata.name, x.information.state])).toEqual([['Hub.hub-a-Device.edge-1', 'Deployed']]);
  });

  it('times out on a device SCC never reaches, saying what it waited for', async () => {
    await startScc();
    scc.hooks.deviceApiReachable = () => false;

    const err = await register(client(), request(), options(fakeClock(), { timeoutMs: 10_000 })).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccTimeoutError);
    expect((err as Error).message).toBe('SCC registration not ready after 10.0 s and 6 attempts: device edge-1 in overlay ov1 has RegStatus "pending": '
      + 'SCC has not yet reached https://10.9.0.5:6443 through the control tunnel');
    expect(writes().filter((w) => w.includes('/hubs/hub-a/devices'))).toEqual([]);
  });

  it('fails at once when SCC could not deploy the connection', async () => {
    await startScc();
    scc.hooks.onHubDeviceConnection = () => {
      throw new Error('rpc error: InstallApp failed');
    };
    const clock = fakeClock();

    const err = await register(client(), request(), options(clock)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccRegistrationError);
    expect((err as Error).message).toBe('connection Hub.hub-a-Device.edge-1 is in state Error: rpc error: InstallApp failed');
    expect(clock.sleeps).toEqual([]);
  });

  it('refuses to adopt a device SCC has with another registration', async () => {
    await startScc();
    await operator('POST', '/overlays/ov1/devices', { metadata: { name: 'edge-1' }, spec: { publicIps: ['198.51.100.7'], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } }, 201);
    const clock = fakeClock();

    const err = await register(client(), request(), options(clock)).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccConflictError);
    expect((err as Error).message).toBe(`${scc.url}/scc/v1/overlays/ov1/devices/edge-1 exists and differs from the registration asked for: `
      + 'spec.publicIps is ["198.51.100.7"], asked []');
    expect(clock.sleeps).toEqual([]);
  });

  it('reports a body that is not SCC\'s, naming the URL', async () => {
    await startScc();
    scc.failNext(1, 200, '<html>proxy login</html>');

    const err = await client().hubs().catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SccProtocolError);
    expect((err as Error).message).toBe(`GET ${scc.url}/scc/v1/overlays/ov1/hubs (200): body is not JSON: "<html>proxy login</html>\\n"`);
  });

  it('talks to an https SCC with its CA, and not without', async () => {
    const tls = await makePki();
    try {
      scc = await SccServer.start({ pki, tls: { cert: readFileSync(tls.serverCert, 'utf8'), key: readFileSync(tls.serverKey, 'utf8') } });
      // Nothing seeded: SCC's 500 for the missing overlay is an HTTP answer, so TLS held.
      const trusted = new SccClient({ url: scc.url, overlay: 'ov1', ca: readFileSync(tls.ca) });
      expect(scc.url.startsWith('https://')).toBe(true);
      await expect(trusted.hubs()).rejects.toThrow(`GET ${scc.url}/scc/v1/overlays/ov1/hubs answered 500: Fail to find overlay`);
      const err = await new SccClient({ url: scc.url, overlay: 'ov1' }).hubs().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SccUnreachableError);
      expect((err as Error).message).toMatch(/SCC unreachable: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
    } finally {
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });
});

describe('the gateway\'s setup from SCC (what the agent runs)', () => {
  const settings = (url: string, over: Partial<GatewaySettings> = {}): GatewaySettings => ({
    candidates: ['n1'], device: 'edge-1', hubs: [{ name: 'hub-a' }], proposals: [], overlayRanges: ['10.10.0.0/24'], dpdSeconds: 2, exports: [],
    scc: { url, overlay: 'ov1', kubeconfigFile: join(tmp, 'kubeconfig'), publicIps: [], timeoutSeconds: 5 },
    ...over,
  });
  const logs: string[] = [];
  const setup = (s: GatewaySettings, clock = fakeClock()) =>
    setupFromScc({ settings: s, dir: join(tmp, 'gateway'), clock, backoff: BACKOFF, connect: true, log: (_l, msg, f) => void logs.push(`${msg} ${JSON.stringify(f ?? {})}`) });

  it('registers, takes the hub address and proposals from SCC, and keeps a 0600 copy that serves while SCC is down', async () => {
    await startScc();
    writeFileSync(join(tmp, 'kubeconfig'), KUBECONFIG);
    const s = settings(scc.url);

    const fresh = await setup(s);

    expect(fresh).toMatchObject({ source: 'scc', hubs: [{ name: 'hub-a', address: '192.0.2.10' }], proposals: ['aes256-sha256-modp4096'], oips: { 'hub-a': '10.10.0.1' } });
    expect(new X509Certificate(fresh.identity.certDer).subject).toBe('CN=device-edge-1-cert');
    expect(fresh.identity.caDers).toHaveLength(2);
    const copy = join(tmp, 'gateway', REGISTRATION_FILE);
    expect(statSync(copy).mode & 0o777).toBe(0o600);

    // A restart finds SCC gone: the same setup from the copy, said in the log.
    const url = scc.url;
    await scc.destroy();
    const cached = await setup(s);
    expect(cached).toEqual({ ...fresh, source: 'scc-cache' });
    expect(logs.some((l) => l.startsWith('SCC unavailable: using the last registration') && l.includes('ECONNREFUSED'))).toBe(true);
    // The copy answers for what it was made for only: another hub list gets SCC's error.
    await expect(setup(settings(url, { hubs: [{ name: 'hub-a' }, { name: 'hub-b' }] }))).rejects.toBeInstanceOf(SccUnreachableError);
  });

  it('never covers a refusal with the copy, and names a missing kubeconfig', async () => {
    await startScc();
    writeFileSync(join(tmp, 'kubeconfig'), KUBECONFIG);
    await setup(settings(scc.url));
    // The operator re-registered the device in Mode 1 meanwhile: SCC's 409 differs from what we ask.
    await operator('DELETE', '/overlays/ov1/hubs/hub-a/devices/edge-1', undefined, 204);
    await operator('DELETE', '/overlays/ov1/devices/edge-1', undefined, 204);
    await operator('POST', '/overlays/ov1/devices', { metadata: { name: 'edge-1' }, spec: { publicIps: ['198.51.100.7'], kubeConfig: Buffer.from(KUBECONFIG).toString('base64') } }, 201);
    await expect(setup(settings(scc.url))).rejects.toBeInstanceOf(SccConflictError);

    await expect(setup(settings(scc.url, { scc: { ...settings(scc.url).scc!, kubeconfigFile: join(tmp, 'nope') } })))
      .rejects.toThrow(`gateway.scc.kubeconfigFile ${join(tmp, 'nope')}: ENOENT`);
  });

  it('refuses an overlay without proposals when the config names none (SCC would fail every connection)', async () => {
    scc = await SccServer.start({ pki });
    await operator('POST', '/overlays', { metadata: { name: 'ov1' } }, 201);
    writeFileSync(join(tmp, 'kubeconfig'), KUBECONFIG);
    const reg = { caRoot: '', caOverlay: '', certificate: '', key: '', mode: 2, deviceIp: '', dataOips: {}, hubPublicIps: { 'hub-a': ['192.0.2.10'] }, hubEndpoints: {} };
    expect(() => setupFromRegistration(settings(scc.url), reg, [], 'scc')).toThrow('overlay ov1 has no proposals in SCC and gateway.proposals is empty');
    expect(() => setupFromRegistration(settings(scc.url, { hubs: [{ name: 'hub-z' }] }), reg, ['aes256-sha256-modp4096'], 'scc'))
      .toThrow('gateway.hubs: SCC reports no address for hub hub-z; set gateway.hubs[].address');
  });
});
