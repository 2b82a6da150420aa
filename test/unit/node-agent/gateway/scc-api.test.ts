// The pure side of the SCC client: SCC's JSON as its Go structs encode it, the
// certificate bundle a device gets, and the decision of where registration stands.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SccProtocolError, certificateMaterial, certificateName, connectionBetween, dataOipFor, decodeConnections, decodeDevice, decodeHubs,
  deviceDifferences, deviceRequestBody, isPendingConnectionQuirk, parseConnectionName, parseEndName, registrationProgress,
  registrationResult, type CertificateMaterial, type RegistrationGoal, type SccCertificate, type SccConnection, type SccDevice, type SccHub,
} from '../../../../node-agent/gateway/scc/api.js';
import { issueCert, type IssuedCert } from '../../../helpers/sdewan/scc-server.js';

const SRC = 'GET http://scc/scc/v1/overlays/ov1/devices/edge-1 (200)';
const meta = (name: string) => ({ name, description: '', userData1: '', userData2: '' });

/** A device exactly as SCC's encoder writes one: tagless status keys, nil list as null. */
function deviceJson(status: Partial<SccDevice['status']> = {}): unknown {
  return {
    metadata: meta('edge-1'),
    spec: { publicIps: null, forceHubConnectivity: false, proxyHub: '', proxyHubPort: 0, useHub4Internet: false, dedicatedSFC: false,
      certificateId: '', kubeConfig: 'YXBpVmVyc2lvbjogdjE=', gitOpsParam: { gitOpsType: '', gitOpsReferenceObject: '', gitOpsResourceObject: '' } },
    status: { Mode: 2, Ip: '10.9.0.5', DataIps: {}, Data: { RegStatus: 'success', scc_ipsec_resource: 'Ipsec-{}' }, DelegatedHub: '', ...status },
  };
}

function connection(end1: string, end2: string, state = 'Deployed', message = '', ips: [string, string] = ['192.0.2.10', '10.10.0.1']): SccConnection {
  const end = (name: string, ip: string) => ({ name, type: name.split('.')[0]!, ip });
  return { metadata: meta(`${end1}-${end2}`), information: { end1: end(end1, ips[0]), end2: end(end2, ips[1]), state: state as SccConnection['information']['state'], message } };
}

function hub(name: string, publicIps: string[] | null): SccHub {
  return { metadata: meta(name), spec: { publicIps, certificateId: '', kubeConfig: 'eA==', gitOpsParam: { gitOpsType: '', gitOpsReferenceObject: '', gitOpsResourceObject: '' } } };
}

describe('names', () => {
  it('follows SCC: device-<n>-cert, hub-<n>-cert, <overlay>-cert', () => {
    expect(certificateName('Device', 'edge-1')).toBe('device-edge-1-cert');
    expect(certificateName('Hub', 'hub-a')).toBe('hub-hub-a-cert');
    expect(certificateName('Overlay', 'ov1')).toBe('ov1-cert');
  });

  it('splits end names at the first dot, a bare name being a hub', () => {
    expect(parseEndName('Device.edge.site-1')).toEqual({ type: 'Device', name: 'edge.site-1' });
    expect(parseEndName('hub-a')).toEqual({ type: 'Hub', name: 'hub-a' });
  });

  it('parses connection names, dashes and dots in names included, and refuses to guess', () => {
    expect(parseConnectionName('Hub.hub-a-Device.edge-1')).toEqual({ end1: { type: 'Hub', name: 'hub-a' }, end2: { type: 'Device', name: 'edge-1' } });
    expect(parseConnectionName('Hub.eu.west-1-Hub.us-2')).toEqual({ end1: { type: 'Hub', name: 'eu.west-1' }, end2: { type: 'Hub', name: 'us-2' } });
    // A hub legally named "x-Device.y" makes the split ambiguous.
    expect(parseConnectionName('Hub.x-Device.y-Device.z')).toBeUndefined();
    expect(parseConnectionName('Hub.a')).toBeUndefined();
    expect(parseConnectionName('Site.a-Device.b')).toBeUndefined();
  });
});

describe('request bodies', () => {
  it('registers a NATed device (Mode 2) with no public IP and the kubeconfig in base64', () => {
    const body = deviceRequestBody({ device: 'edge-1', kubeConfig: 'apiVersion: v1\nkind: Config\n' });
    expect(body).toEqual({ metadata: { name: 'edge-1' }, spec: { publicIps: [], kubeConfig: Buffer.from('apiVersion: v1\nkind: Config\n').toString('base64') } });
  });

  it('tells a device SCC registered differently from the one asked for', () => {
    const d = decodeDevice(deviceJson({ Mode: 1 }), SRC);
    d.spec.publicIps = ['198.51.100.7'];
    expect(deviceDifferences(d, { device: 'edge-1', kubeConfig: 'x', publicIps: ['198.51.100.7'] })).toEqual([]);
    expect(deviceDifferences(d, { device: 'edge-1', kubeConfig: 'x' })).toEqual(['spec.publicIps is ["198.51.100.7"], asked []']);
  });

  it('recognises the zero object SCC answers a connection request for a pending device with', () => {
    expect(isPendingConnectionQuirk({ metadata: meta(''), spec: { device: '', isDelegateHub: false } })).toBe(true);
    expect(isPendingConnectionQuirk({ metadata: meta('edge-1'), spec: { device: 'edge-1', isDelegateHub: false } })).toBe(false);
  });
});

describe('decoders', () => {
  it('reads a device as SCC encodes it, data OIPs keyed Hub.<hub>', () => {
    const d = decodeDevice(deviceJson({ DataIps: { 'Hub.hub-a': '10.10.0.1', 'Hub.hub-b': 'nonsense' } }), SRC);
    expect(d.status.Mode).toBe(2);
    expect(d.spec.publicIps).toBeNull();
    expect(dataOipFor(d, 'hub-a')).toBe('10.10.0.1');
    expect(dataOipFor(d, 'hub-b')).toBeUndefined();
    expect(dataOipFor(d, 'hub-c')).toBeUndefined();
  });

  it('refuses JSON-style status keys, which SCC does not send, naming URL and field', () => {
    const body = deviceJson() as { status: unknown };
    body.status = { mode: 2, ip: '10.9.0.5' };
    expect(() => decodeDevice(body, SRC)).toThrow(new SccProtocolError(SRC, 'status.Mode', 'is undefined, not a number'));
  });

  it('refuses an unknown RegStatus and never prints the kubeConfig', () => {
    expect(() => decodeDevice(deviceJson({ Data: { RegStatus: 'done' } }), SRC)).toThrow(`${SRC}: status.Data.RegStatus is "done", not pending, success or failed`);
    const body = deviceJson() as { spec: { kubeConfig: unknown } };
    body.spec.kubeConfig = { secret: 'token-abc' };
    expect(() => decodeDevice(body, SRC)).toThrow(/spec\.kubeConfig is object, not a string$/);
  });

  it('reads an empty GET-all (null) as no items and checks connection states', () => {
    expect(decodeHubs(null, SRC)).toEqual([]);
    expect(decodeConnections(null, SRC)).toEqual([]);
    const c = connection('Hub.hub-a', 'Device.edge-1', 'Deployed');
    expect(decodeConnections([c], SRC)).toEqual([c]);
    const bad = connection('Hub.hub-a', 'Device.edge-1', 'Up');
    expect(() => decodeConnections([bad], SRC)).toThrow(`${SRC}: [0].information.state is "Up", not one of Created, Deployed, Undeployed, Error`);
    expect(() => decodeHubs({ hubs: [] }, SRC)).toThrow(/body is .* not a list \(or null\)/);
  });
});

describe('certificate material', () => {
  let dir: string;
  let root: IssuedCert;
  let overlay: IssuedCert;
  let device: IssuedCert;
  let other: IssuedCert;
  let rogueOverlay: IssuedCert;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // As SCC cuts PEMs: through the END line, no newline.
  const cut = (pem: string) => pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25);
  const cert = (leaf: IssuedCert, key = leaf.keyPem, ca = `${b64(cut(root.certPem))}___${b64(cut(overlay.certPem))}`): SccCertificate =>
    ({ metadata: meta('edge-1'), spec: { isCA: false, clusterType: 'Device' }, data: { ca, cert: b64(cut(leaf.certPem)), key: b64(key) } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warren-scc-api-'));
    root = await issueCert(dir, 'sdewan-controller', undefined, true);
    overlay = await issueCert(dir, 'ov1-cert', root, true);
    device = await issueCert(dir, 'device-edge-1-cert', overlay, false);
    other = await issueCert(dir, 'device-edge-2-cert', overlay, false);
    rogueOverlay = await issueCert(dir, 'ov2-cert', undefined, true);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('splits data.ca on ___ into root then overlay CA, and completes each PEM', () => {
    const m: CertificateMaterial = certificateMaterial(cert(device), 'edge-1', SRC);
    expect(m.caRoot).toBe(`${cut(root.certPem)}\n`);
    expect(m.caOverlay).toBe(`${cut(overlay.certPem)}\n`);
    expect(m.certificate).toBe(`${cut(device.certPem)}\n`);
    expect(m.key).toBe(device.keyPem);
  });

  it('accepts the CA SCC appends for an isCA certificate after the two it always sends', () => {
    const c = cert(device);
    c.data.ca += `___${b64(cut(device.certPem))}`;
    expect(certificateMaterial(c, 'edge-1', SRC).caOverlay).toBe(`${cut(overlay.certPem)}\n`);
  });

  it('refuses a bundle that is not root and overlay CA', () => {
    expect(() => certificateMaterial(cert(device, device.keyPem, b64(root.certPem)), 'edge-1', SRC)).toThrow(/data\.ca has 1 piece\(s\) split on "___"/);
    expect(() => certificateMaterial(cert(device, device.keyPem, `___${b64(overlay.certPem)}`), 'edge-1', SRC))
      .toThrow(`${SRC}: data.ca[0] (root CA) is empty (SCC could not read the cert-manager secret)`);
    expect(() => certificateMaterial(cert(device, device.keyPem, `${b64(root.certPem)}___not*base64`), 'edge-1', SRC)).toThrow(/data\.ca\[1\] \(overlay CA\) is not base64: "not\*base64"/);
    expect(() => certificateMaterial(cert(device, device.keyPem, `${b64(root.certPem)}___${b64('hello')}`), 'edge-1', SRC)).toThrow(/does not decode to one PEM certificate: "hello"/);
  });

  it('refuses a certificate whose subject is not this device (the IKE identity)', () => {
    expect(() => certificateMaterial(cert(other), 'edge-1', SRC)).toThrow(`${SRC}: data.cert has subject "CN=device-edge-2-cert", expected "CN=device-edge-1-cert"`);
  });

  it('refuses a key that is not the certificate\'s, without printing it', () => {
    let message = '';
    try {
      certificateMaterial(cert(device, other.keyPem), 'edge-1', SRC);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`${SRC}: data.key does not belong to the certificate CN=device-edge-1-cert`);
    const garbled = cert(device);
    garbled.data.key = b64('-----BEGIN RSA PRIVATE KEY-----\nsecret-bytes\n-----END RSA PRIVATE KEY-----\n');
    expect(() => certificateMaterial(garbled, 'edge-1', SRC)).toThrow(/data\.key cannot be loaded/);
    expect(() => certificateMaterial(garbled, 'edge-1', SRC)).not.toThrow(/secret-bytes/);
  });

  it('refuses a chain that does not verify: leaf not from the overlay CA, overlay CA not from the root', () => {
    const wrongOverlay = `${b64(root.certPem)}___${b64(rogueOverlay.certPem)}`;
    expect(() => certificateMaterial(cert(device, device.keyPem, wrongOverlay), 'edge-1', SRC)).toThrow('data.cert is not signed by the overlay CA "CN=ov2-cert"');
    const wrongRoot = `${b64(rogueOverlay.certPem)}___${b64(overlay.certPem)}`;
    expect(() => certificateMaterial(cert(device, device.keyPem, wrongRoot), 'edge-1', SRC)).toThrow('data.ca[1] ("CN=ov1-cert") is not signed by the root CA "CN=ov2-cert"');
  });
});

describe('registrationProgress', () => {
  const goal: RegistrationGoal = { overlay: 'ov1', device: 'edge-1', hubs: ['hub-a', 'hub-b'], connect: true };
  const hubs = [hub('hub-a', ['192.0.2.10']), hub('hub-b', ['203.0.113.5', '203.0.113.6'])];
  const dev = (status: Partial<SccDevice['status']>) => decodeDevice(deviceJson(status), SRC);
  const both = { 'Hub.hub-a': '10.10.0.1', 'Hub.hub-b': '10.10.0.2' };
  const deployed = [connection('Hub.hub-a', 'Device.edge-1', 'Deployed', '', ['192.0.2.10', '10.10.0.1']),
    // SCC looks connections up in either order of ends; so does the client.
    connection('Device.edge-1', 'Hub.hub-b', 'Deployed', '', ['10.10.0.2', '203.0.113.6'])];

  it('waits while SCC has not reached a Mode-2 device through its control tunnel', () => {
    expect(registrationProgress(goal, dev({ Data: { RegStatus: 'pending' } }), [], hubs)).toEqual({
      kind: 'waiting', reason: 'device edge-1 in overlay ov1 has RegStatus "pending": SCC has not yet reached https://10.9.0.5:6443 through the control tunnel',
    });
  });

  it('fails for good on RegStatus failed, on a status a PUT wiped, and on a connection in Error', () => {
    expect(registrationProgress(goal, dev({ Data: { RegStatus: 'failed' } }), [], hubs).kind).toBe('failed');
    expect(registrationProgress(goal, dev({ Mode: 0, Data: {} }), [], hubs)).toMatchObject({ kind: 'failed', reason: expect.stringContaining('no status.Data.RegStatus (Mode 0)') });
    const error = [connection('Hub.hub-a', 'Device.edge-1', 'Error', 'rsync: InstallApp failed')];
    expect(registrationProgress(goal, dev({}), error, hubs)).toEqual({ kind: 'failed', reason: 'connection Hub.hub-a-Device.edge-1 is in state Error: rsync: InstallApp failed' });
  });

  it('asks to connect the hubs that have no connection, or waits for an operator to', () => {
    expect(registrationProgress(goal, dev({ DataIps: { 'Hub.hub-a': '10.10.0.1' } }), deployed.slice(0, 1), hubs)).toEqual({ kind: 'connect', hubs: ['hub-b'] });
    expect(registrationProgress({ ...goal, connect: false }, dev({}), [], hubs)).toMatchObject({ kind: 'waiting', reason: expect.stringContaining('no connection between hub hub-a and device edge-1') });
  });

  it('waits for a hub not defined yet and for a connection not yet Deployed', () => {
    expect(registrationProgress(goal, dev({}), [], hubs.slice(1))).toEqual({ kind: 'waiting', reason: 'hub hub-a is not defined in overlay ov1' });
    const created = [connection('Hub.hub-a', 'Device.edge-1', 'Created')];
    expect(registrationProgress(goal, dev({}), created, hubs)).toEqual({ kind: 'waiting', reason: 'connection Hub.hub-a-Device.edge-1 is in state Created' });
  });

  it('fails when a Deployed connection has no data OIP (SCC drops allocation errors)', () => {
    expect(registrationProgress(goal, dev({ DataIps: { 'Hub.hub-a': '10.10.0.1' } }), deployed, hubs))
      .toMatchObject({ kind: 'failed', reason: expect.stringContaining('has no IPv4 status.DataIps["Hub.hub-b"] (undefined)') });
  });

  it('is ready when every hub connection is Deployed with a data OIP, and the result says where each hub is', () => {
    const d = dev({ DataIps: both });
    expect(registrationProgress(goal, d, deployed, hubs)).toEqual({ kind: 'ready' });
    expect(connectionBetween(deployed, 'hub-b', 'edge-1')?.metadata.name).toBe('Device.edge-1-Hub.hub-b');
    const material = { certificate: 'c', key: 'k', caRoot: 'r', caOverlay: 'o' };
    expect(registrationResult(goal, material, d, deployed, hubs)).toEqual({
      ...material, mode: 2, deviceIp: '10.9.0.5',
      dataOips: { 'hub-a': '10.10.0.1', 'hub-b': '10.10.0.2' },
      hubPublicIps: { 'hub-a': ['192.0.2.10'], 'hub-b': ['203.0.113.5', '203.0.113.6'] },
      // Only the connection shows which of hub-b's addresses SCC verified.
      hubEndpoints: { 'hub-a': '192.0.2.10', 'hub-b': '203.0.113.6' },
    });
  });
});
