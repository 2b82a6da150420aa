// What an SD-EWAN device exchanges with the central controller (SCC), as SCC's Go structs
// encode it (SDEWAN.md §1, checked against icn-sdwan 48d3ca6f `scc/pkg/module`), and the
// pure decisions over it: is the body what SCC sends, is the device registered, which
// data OIP did each hub connection get. No I/O here; client.ts sends and receives.
//
// Go encodes nil slices and maps as null, and SCC's GET-all answers null for an empty
// collection: every list and map below may be null on the wire.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { WarrenError } from '../../../lib/errors.js';

export interface SccMetadata {
  name: string;
  description: string;
  userData1: string;
  userData2: string;
}

export type ClusterType = 'Device' | 'Hub' | 'Overlay';

export interface SccCertificate {
  metadata: SccMetadata;
  spec: { isCA: boolean; clusterType: ClusterType };
  /** Each base64 of PEM; `ca` is root + "___" + overlay CA (+ "___" + itself when isCA). */
  data: { ca: string; cert: string; key: string };
}

export interface GitOpsParam {
  gitOpsType: string;
  gitOpsReferenceObject: string;
  gitOpsResourceObject: string;
}

export interface SccDeviceSpec {
  publicIps: string[] | null;
  forceHubConnectivity: boolean;
  proxyHub: string;
  proxyHubPort: number;
  useHub4Internet: boolean;
  dedicatedSFC: boolean;
  certificateId: string;
  /** base64 of a kubeconfig: credentials, never logged. SCC rewrites it on registration. */
  kubeConfig: string;
  gitOpsParam: GitOpsParam;
}

export type RegStatus = 'pending' | 'success' | 'failed';

/** A Go struct without JSON tags: the keys are Go's field names. */
export interface SccDeviceStatus {
  /** 1 public IP, 2 behind NAT (control tunnel to SCC's CNF), 3 GitOps. */
  Mode: number;
  /** Mode 1: the public IP that answered; Mode 2: the provider (control-plane) OIP. */
  Ip: string;
  /** "Hub.<hub>" to the data OIP of that hub connection. */
  DataIps: Record<string, string> | null;
  /** RegStatus, and in Mode 2 scc_ipsec_resource (which holds SCC's private key: never logged). */
  Data: Record<string, string> | null;
  DelegatedHub: string;
}

export interface SccDevice {
  metadata: SccMetadata;
  spec: SccDeviceSpec;
  status: SccDeviceStatus;
}

/** A hub's status is `json:"-"`: the API never shows which public IP SCC chose. */
export interface SccHub {
  metadata: SccMetadata;
  spec: { publicIps: string[] | null; certificateId: string; kubeConfig: string; gitOpsParam: GitOpsParam };
}

export type ConnectionState = 'Created' | 'Deployed' | 'Undeployed' | 'Error';
export const CONNECTION_STATES: readonly ConnectionState[] = ['Created', 'Deployed', 'Undeployed', 'Error'];

export interface SccConnectionEnd {
  /** "<Type>.<name>", e.g. "Hub.hub-a". */
  name: string;
  type: string;
  ip: string;
}

export interface SccConnection {
  /** "<end1.name>-<end2.name>". */
  metadata: SccMetadata;
  information: { end1: SccConnectionEnd; end2: SccConnectionEnd; state: ConnectionState; message: string };
}

export interface SccHubDevice {
  metadata: SccMetadata;
  spec: { device: string; isDelegateHub: boolean };
}

/** A body that is not what SCC sends (SDEWAN.md §1): names where it came from, the field and the value. */
export class SccProtocolError extends WarrenError {
  constructor(readonly source: string, readonly field: string, why: string, options?: { cause?: unknown }) {
    super('SCC_PROTOCOL', `${source}: ${field} ${why}`, options);
  }
}

// Names and SCC's own naming rules (module/*object.go).

export function certificateName(type: ClusterType, name: string): string {
  return type === 'Overlay' ? `${name}-cert` : `${type.toLowerCase()}-${name}-cert`;
}

export function endName(type: 'Hub' | 'Device', name: string): string {
  return `${type}.${name}`;
}

/** SCC's ParseEndName: the type up to the first dot; a name without one is a hub. */
export function parseEndName(end: string): { type: string; name: string } {
  const dot = end.indexOf('.');
  return dot < 0 ? { type: 'Hub', name: end } : { type: end.slice(0, dot), name: end.slice(dot + 1) };
}

/**
 * "Hub.a-Device.b" into its ends. Names may themselves hold "-Device." (RFC 1123 allows
 * dots, dashes and capitals), so every split is tried and an ambiguous name gives
 * undefined rather than a guess; `information.end1/end2` are the authority.
 */
export function parseConnectionName(name: string): { end1: { type: string; name: string }; end2: { type: string; name: string } } | undefined {
  const splits: Array<[string, string]> = [];
  for (let i = name.indexOf('-'); i >= 0; i = name.indexOf('-', i + 1)) {
    const [a, b] = [name.slice(0, i), name.slice(i + 1)];
    if (/^(Hub|Device)\.[^]+$/.test(a) && /^(Hub|Device)\.[^]+$/.test(b)) splits.push([a, b]);
  }
  if (splits.length !== 1) return undefined;
  const [a, b] = splits[0]!;
  return { end1: parseEndName(a), end2: parseEndName(b) };
}

// Request bodies. Go fills what is left out with zero values.

export function certificateRequest(device: string): { metadata: { name: string }; spec: { isCA: boolean; clusterType: ClusterType } } {
  return { metadata: { name: device }, spec: { isCA: false, clusterType: 'Device' } };
}

export interface DeviceRequest {
  device: string;
  /** The device cluster's kubeconfig (YAML). SCC needs it in Modes 1 and 2. */
  kubeConfig: string;
  /** Empty or absent: Mode 2, the device is behind NAT. */
  publicIps?: readonly string[];
}

export function deviceRequestBody(r: DeviceRequest): { metadata: { name: string }; spec: { publicIps: string[]; kubeConfig: string } } {
  return {
    metadata: { name: r.device },
    spec: { publicIps: [...(r.publicIps ?? [])], kubeConfig: Buffer.from(r.kubeConfig, 'utf8').toString('base64') },
  };
}

export function hubDeviceRequestBody(device: string, isDelegateHub: boolean): { metadata: { name: string }; spec: SccHubDevice['spec'] } {
  // metadata.name is only a label to SCC, but it must pass the hostname check: the
  // device's own name already has.
  return { metadata: { name: device }, spec: { device, isDelegateHub } };
}

/**
 * What differs between a device SCC already has (409 on POST) and the one asked for. The
 * kubeConfig cannot be compared: SCC rewrites its server and TLS fields on registration.
 */
export function deviceDifferences(existing: SccDevice, wanted: DeviceRequest): string[] {
  const have = [...(existing.spec.publicIps ?? [])].sort();
  const want = [...(wanted.publicIps ?? [])].sort();
  const out: string[] = [];
  if (have.join(',') !== want.join(',')) out.push(`spec.publicIps is ${JSON.stringify(have)}, asked ${JSON.stringify(want)}`);
  if (existing.spec.kubeConfig === '') out.push('spec.kubeConfig is empty (a GitOps device, Mode 3), asked for a kubeconfig');
  return out;
}

/** SCC's answer to a hub-device POST while the device is pending: 201 and a zero object, nothing created (SDEWAN.md §5). */
export function isPendingConnectionQuirk(reply: SccHubDevice): boolean {
  return reply.metadata.name === '' && reply.spec.device === '';
}

// Decoders: check what a device relies on, keep the rest as SCC sent it.

type Obj = Record<string, unknown>;

function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

class Reader {
  constructor(readonly source: string) {}
  fail(field: string, why: string, cause?: unknown): never {
    throw new SccProtocolError(this.source, field, why, { cause });
  }
  obj(v: unknown, field: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, `is ${show(v)}, not an object`);
    return v as Obj;
  }
  str(o: Obj, key: string, field: string, secret = false): string {
    const v = o[key];
    if (typeof v !== 'string') this.fail(`${field}.${key}`, `is ${secret ? typeof v : show(v)}, not a string`);
    return v;
  }
  strings(o: Obj, key: string, field: string): string[] | null {
    const v = o[key];
    if (v === null || v === undefined) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(`${field}.${key}`, `is ${show(v)}, not a list of strings`);
    return v as string[];
  }
  stringMap(o: Obj, key: string, field: string): Record<string, string> | null {
    const v = o[key];
    if (v === null || v === undefined) return null;
    const m = this.obj(v, `${field}.${key}`);
    for (const [k, x] of Object.entries(m)) if (typeof x !== 'string') this.fail(`${field}.${key}.${k}`, `is ${show(x)}, not a string`);
    return m as Record<string, string>;
  }
  metadata(o: Obj, field: string): SccMetadata {
    const m = this.obj(o.metadata, `${field}.metadata`);
    return { ...m, name: this.str(m, 'name', `${field}.metadata`) } as SccMetadata;
  }
  list(body: unknown): unknown[] {
    if (body === null) return [];
    if (!Array.isArray(body)) this.fail('body', `is ${show(body)}, not a list (or null)`);
    return body;
  }
}

export function decodeCertificate(body: unknown, source: string): SccCertificate {
  const r = new Reader(source);
  const o = r.obj(body, 'body');
  const metadata = r.metadata(o, 'body');
  const spec = r.obj(o.spec, 'spec');
  const data = r.obj(o.data, 'data');
  return {
    ...o,
    metadata,
    spec: spec as SccCertificate['spec'],
    data: { ca: r.str(data, 'ca', 'data'), cert: r.str(data, 'cert', 'data'), key: r.str(data, 'key', 'data', true) },
  } as SccCertificate;
}

export function decodeDevice(body: unknown, source: string): SccDevice {
  const r = new Reader(source);
  const o = r.obj(body, 'body');
  const metadata = r.metadata(o, 'body');
  const spec = r.obj(o.spec, 'spec');
  const status = r.obj(o.status, 'status');
  if (typeof status.Mode !== 'number') r.fail('status.Mode', `is ${show(status.Mode)}, not a number`);
  const Data = r.stringMap(status, 'Data', 'status');
  const reg = Data?.RegStatus;
  if (reg !== undefined && !['pending', 'success', 'failed'].includes(reg)) r.fail('status.Data.RegStatus', `is ${show(reg)}, not pending, success or failed`);
  return {
    ...o,
    metadata,
    spec: { ...spec, publicIps: r.strings(spec, 'publicIps', 'spec'), kubeConfig: r.str(spec, 'kubeConfig', 'spec', true) } as SccDeviceSpec,
    status: { ...status, Mode: status.Mode, Ip: r.str(status, 'Ip', 'status'), DataIps: r.stringMap(status, 'DataIps', 'status'), Data } as SccDeviceStatus,
  } as SccDevice;
}

export function decodeHubs(body: unknown, source: string): SccHub[] {
  const r = new Reader(source);
  return r.list(body).map((h, i) => {
    const o = r.obj(h, `[${i}]`);
    const spec = r.obj(o.spec, `[${i}].spec`);
    return { ...o, metadata: r.metadata(o, `[${i}]`), spec: { ...spec, publicIps: r.strings(spec, 'publicIps', `[${i}].spec`) } } as SccHub;
  });
}

/**
 * The overlay's proposals as strongSwan strings, `<encryption>-<hash>-<dhGroup>` (SDEWAN.md
 * §1.3: SCC pushes every one of them to both ends of every connection, unvalidated).
 */
export function decodeProposals(body: unknown, source: string): string[] {
  const r = new Reader(source);
  return r.list(body).map((p, i) => {
    const o = r.obj(p, `[${i}]`);
    r.metadata(o, `[${i}]`);
    const spec = r.obj(o.spec, `[${i}].spec`);
    return (['encryption', 'hash', 'dhGroup'] as const).map((k) => {
      const v = r.str(spec, k, `[${i}].spec`);
      if (!/^[a-z0-9_]+$/.test(v)) r.fail(`[${i}].spec.${k}`, `is ${show(v)}, not an algorithm name`);
      return v;
    }).join('-');
  });
}

export function decodeConnections(body: unknown, source: string): SccConnection[] {
  const r = new Reader(source);
  return r.list(body).map((c, i) => {
    const o = r.obj(c, `[${i}]`);
    const info = r.obj(o.information, `[${i}].information`);
    const end = (k: 'end1' | 'end2'): SccConnectionEnd => {
      const e = r.obj(info[k], `[${i}].information.${k}`);
      return { name: r.str(e, 'name', `[${i}].information.${k}`), type: r.str(e, 'type', `[${i}].information.${k}`), ip: r.str(e, 'ip', `[${i}].information.${k}`) };
    };
    const state = r.str(info, 'state', `[${i}].information`);
    if (!CONNECTION_STATES.includes(state as ConnectionState)) r.fail(`[${i}].information.state`, `is ${show(state)}, not one of ${CONNECTION_STATES.join(', ')}`);
    const information = { end1: end('end1'), end2: end('end2'), state: state as ConnectionState, message: r.str(info, 'message', `[${i}].information`) };
    return { ...o, metadata: r.metadata(o, `[${i}]`), information };
  });
}

export function decodeHubDevice(body: unknown, source: string): SccHubDevice {
  const r = new Reader(source);
  const o = r.obj(body, 'body');
  const spec = r.obj(o.spec, 'spec');
  return { metadata: r.metadata(o, 'body'), spec: { device: r.str(spec, 'device', 'spec'), isDelegateHub: spec.isDelegateHub === true } };
}

// Certificate material (SDEWAN.md §1.6).

export interface CertificateMaterial {
  /** PEM, each ending in a newline (SCC's own copies lack the last one). */
  certificate: string;
  key: string;
  caRoot: string;
  caOverlay: string;
}

const PEM_CERT = /^-----BEGIN CERTIFICATE-----\r?\n[^]+?\r?\n-----END CERTIFICATE-----\s*$/;
const PEM_KEY = /^-----BEGIN (RSA |EC )?PRIVATE KEY-----\r?\n[^]+?\r?\n-----END (RSA |EC )?PRIVATE KEY-----\s*$/;

function pemOf(r: Reader, b64: string, field: string, shape: RegExp, secret: boolean): string {
  if (b64 === '') r.fail(field, 'is empty (SCC could not read the cert-manager secret)');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) r.fail(field, `is not base64${secret ? '' : `: ${show(b64)}`}`);
  const pem = Buffer.from(b64, 'base64').toString('utf8');
  if (!shape.test(pem)) r.fail(field, `does not decode to one PEM ${secret ? 'private key' : `certificate: ${show(pem)}`}`);
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/**
 * The device's PEMs out of a certificate object, checked as strongSwan will use them: the
 * subject is exactly CN=device-<name>-cert (the IKE identity), the key belongs to the
 * certificate, the overlay CA signed it and the root signed the overlay CA.
 */
export function certificateMaterial(cert: SccCertificate, device: string, source: string): CertificateMaterial {
  const r = new Reader(source);
  const pieces = cert.data.ca.split('___');
  if (pieces.length < 2) r.fail('data.ca', `has ${pieces.length} piece(s) split on "___", expected root and overlay CA: ${show(cert.data.ca)}`);
  const m: CertificateMaterial = {
    caRoot: pemOf(r, pieces[0]!, 'data.ca[0] (root CA)', PEM_CERT, false),
    caOverlay: pemOf(r, pieces[1]!, 'data.ca[1] (overlay CA)', PEM_CERT, false),
    certificate: pemOf(r, cert.data.cert, 'data.cert', PEM_CERT, false),
    key: pemOf(r, cert.data.key, 'data.key', PEM_KEY, true),
  };
  const x509 = (pem: string, field: string): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      return r.fail(field, `is not an X.509 certificate: ${(err as Error).message}`, err);
    }
  };
  const [root, overlay, leaf] = [x509(m.caRoot, 'data.ca[0]'), x509(m.caOverlay, 'data.ca[1]'), x509(m.certificate, 'data.cert')];
  const subject = `CN=${certificateName('Device', device)}`;
  if (leaf.subject !== subject) r.fail('data.cert', `has subject ${show(leaf.subject)}, expected ${show(subject)}`);
  let keyMatches = false;
  try {
    keyMatches = leaf.checkPrivateKey(createPrivateKey(m.key));
  } catch (err) {
    r.fail('data.key', `cannot be loaded: ${(err as Error).message}`, err);
  }
  if (!keyMatches) r.fail('data.key', `does not belong to the certificate ${subject}`);
  if (!leaf.checkIssued(overlay) || !leaf.verify(overlay.publicKey)) r.fail('data.cert', `is not signed by the overlay CA ${show(overlay.subject)}`);
  if (!overlay.checkIssued(root) || !overlay.verify(root.publicKey)) r.fail('data.ca[1]', `(${show(overlay.subject)}) is not signed by the root CA ${show(root.subject)}`);
  return m;
}

// Status interpretation.

export function regStatus(device: SccDevice): RegStatus | undefined {
  return device.status.Data?.RegStatus as RegStatus | undefined;
}

export function dataOipFor(device: SccDevice, hub: string): string | undefined {
  const ip = device.status.DataIps?.[endName('Hub', hub)];
  return ip && isIPv4(ip) ? ip : undefined;
}

/** The hub-device connection, in either order of ends (SCC looks both up too). */
export function connectionBetween(connections: readonly SccConnection[], hub: string, device: string): SccConnection | undefined {
  const ends = [endName('Hub', hub), endName('Device', device)].sort().join('|');
  return connections.find((c) => [c.information.end1.name, c.information.end2.name].sort().join('|') === ends);
}

function hubEnd(c: SccConnection): SccConnectionEnd {
  return c.information.end1.type === 'Hub' ? c.information.end1 : c.information.end2;
}

export interface RegistrationGoal {
  overlay: string;
  device: string;
  hubs: readonly string[];
  /** Create missing hub-device connections ourselves, rather than wait for an operator to. */
  connect: boolean;
}

export type Progress =
  | { kind: 'failed'; reason: string }
  | { kind: 'waiting'; reason: string }
  | { kind: 'connect'; hubs: string[] }
  | { kind: 'ready' };

/** Where registration stands, from one reading of the device, its connections and the hubs. */
export function registrationProgress(goal: RegistrationGoal, device: SccDevice, connections: readonly SccConnection[], hubs: readonly SccHub[]): Progress {
  const reg = regStatus(device);
  const who = `device ${goal.device} in overlay ${goal.overlay}`;
  if (reg === 'failed') return { kind: 'failed', reason: `SCC set RegStatus "failed" for ${who}: it could not decode the device's kubeConfig` };
  if (reg === undefined) return { kind: 'failed', reason: `${who} has no status.Data.RegStatus (Mode ${device.status.Mode}): a PUT resets SCC's status and registration never resumes` };
  if (reg === 'pending') {
    const how = device.status.Mode === 2 ? `SCC has not yet reached https://${device.status.Ip}:6443 through the control tunnel` : `SCC has not finished Mode ${device.status.Mode} registration`;
    return { kind: 'waiting', reason: `${who} has RegStatus "pending": ${how}` };
  }
  const toConnect: string[] = [];
  for (const hub of goal.hubs) {
    if (!hubs.some((h) => h.metadata.name === hub)) return { kind: 'waiting', reason: `hub ${hub} is not defined in overlay ${goal.overlay}` };
    const c = connectionBetween(connections, hub, goal.device);
    if (!c) {
      if (goal.connect) toConnect.push(hub);
      else return { kind: 'waiting', reason: `no connection between hub ${hub} and ${who} yet (POST .../hubs/${hub}/devices creates it)` };
      continue;
    }
    const { state, message } = c.information;
    if (state === 'Error') return { kind: 'failed', reason: `connection ${c.metadata.name} is in state Error: ${message || '(no message)'}` };
    if (state !== 'Deployed') return { kind: 'waiting', reason: `connection ${c.metadata.name} is in state ${state}` };
    if (!dataOipFor(device, hub)) {
      return { kind: 'failed', reason: `connection ${c.metadata.name} is Deployed but ${who} has no IPv4 status.DataIps["${endName('Hub', hub)}"] (${show(device.status.DataIps?.[endName('Hub', hub)])}): SCC ignores a failed data OIP allocation, check the overlay's ipranges` };
    }
  }
  return toConnect.length ? { kind: 'connect', hubs: toConnect } : { kind: 'ready' };
}

export interface SccRegistration extends CertificateMaterial {
  mode: number;
  /** status.Ip: the provider OIP in Mode 2, the public IP SCC verified in Mode 1. */
  deviceIp: string;
  /** Per hub: the one address the hub hands out by IKE configuration payload. */
  dataOips: Record<string, string>;
  hubPublicIps: Record<string, string[]>;
  /** Per hub: the IP SCC verified and renders into the device's CR (the connection's hub end). */
  hubEndpoints: Record<string, string>;
}

/** The result, once registrationProgress said ready. */
export function registrationResult(goal: RegistrationGoal, material: CertificateMaterial, device: SccDevice, connections: readonly SccConnection[], hubs: readonly SccHub[]): SccRegistration {
  const result: SccRegistration = { ...material, mode: device.status.Mode, deviceIp: device.status.Ip, dataOips: {}, hubPublicIps: {}, hubEndpoints: {} };
  for (const hub of goal.hubs) {
    result.dataOips[hub] = dataOipFor(device, hub)!;
    result.hubPublicIps[hub] = [...(hubs.find((h) => h.metadata.name === hub)?.spec.publicIps ?? [])];
    result.hubEndpoints[hub] = hubEnd(connectionBetween(connections, hub, goal.device)!).ip;
  }
  return result;
}
