// An emulated SD-EWAN central controller (SCC) for tests: the `/scc/v1` REST API of
// icn-sdwan 48d3ca6f as SDEWAN.md §1 describes it and `scc/api/controller_handler.go`,
// `scc/pkg/manager/*` and `scc/pkg/module/*` implement it. Real SCC needs MongoDB, rsync
// and cert-manager, none of which run here; what a device can observe is reproduced:
//
// - the generic handler: 400 "Empty body", 422 for Go decode errors and for validation
//   ("Input fields check error: [Name(hostname_rfc1123:)]"), 500 for a missing parent
//   ("Fail to find overlay") and for any failed GET ("No Object"), 409 "Resource x is
//   available already", 201 with the object, 204 on delete; errors are Go's http.Error
//   (text/plain, message and a newline);
// - Go's JSON: every field present with its zero value, nil lists and maps as null, an
//   empty GET-all as null, tagless status keys (Mode, Ip, DataIps, Data, DelegatedHub);
// - device registration: Mode 1 picks the first public IP that answers, Mode 2 takes a
//   provider OIP and stays "pending" until the device's API answers through the control
//   tunnel, then SCC rewrites the kubeconfig's server; SCC's 5 s poller is modelled as
//   running before every read of a device, so tests need no timers;
// - hub-device connections: the data OIP from the overlay's ipranges (an allocation
//   failure ignored, as SCC does), Deploy as a synchronous hook, and the quirk: a POST
//   while the device is pending answers 201 with a zero object and creates nothing;
// - certificates from a real PKI made with openssl: root CA `sdewan-controller`, overlay
//   CAs `<overlay>-cert`, RSA 2048 PKCS#1 leaves with subject CN=<name> only, data.ca =
//   base64(root) "___" base64(overlay CA), each PEM cut after its END line as SCC does.
//
// Not reproduced: GitOps (Mode 3, cluster-sync-objects), sites, cnfs, routes and NAT CRs,
// device-device connections, Go's exact wording for JSON syntax errors.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { listenInNetns } from '../netns-listener.js';
import { run } from '../sh.js';

// ---------------------------------------------------------------------------------------
// PKI: what cert-manager holds in SCC's cluster.

export interface IssuedCert {
  name: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment\nsubjectKeyIdentifier=hash\n';
const LEAF_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nsubjectKeyIdentifier=hash\n';

/** A cert-manager Certificate: RSA 2048 PKCS#1 key, subject CN=<name> only, 90 days, signed by `signer` (self when absent). */
export async function issueCert(dir: string, name: string, signer: IssuedCert | undefined, isCA: boolean): Promise<IssuedCert> {
  const p = (ext: string) => join(dir, `${name}.${ext}`);
  await run('openssl', ['genrsa', '-traditional', '-out', p('key'), '2048']);
  await run('openssl', ['req', '-new', '-key', p('key'), '-subj', `/CN=${name}`, '-out', p('csr')]);
  writeFileSync(p('ext'), isCA ? CA_EXT : LEAF_EXT);
  const signing = signer ? ['-CA', signer.certFile, '-CAkey', signer.keyFile] : ['-key', p('key')];
  await run('openssl', ['x509', '-req', '-in', p('csr'), ...signing, '-days', '90', '-sha256',
    '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-extfile', p('ext'), '-out', p('crt')]);
  return { name, certPem: readFileSync(p('crt'), 'utf8'), keyPem: readFileSync(p('key'), 'utf8'), certFile: p('crt'), keyFile: p('key') };
}

/** SCC's own certificates, made at its start: shareable between servers, since RSA key generation costs most of a test's time. */
export class SccPki {
  private constructor(readonly dir: string, readonly root: IssuedCert, readonly base: IssuedCert) {}

  static async create(): Promise<SccPki> {
    const dir = mkdtempSync(join(tmpdir(), 'warren-scc-pki-'));
    const root = await issueCert(dir, 'sdewan-controller', undefined, true);
    return new SccPki(dir, root, await issueCert(dir, 'sdewan-controller-base', root, false));
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Go's encoding/json, as far as a client can observe it.

type GoType = 'string' | 'bool' | 'int' | '[]string' | GoStruct;
interface GoStruct {
  struct: string;
  fields: Record<string, GoType>;
}
type J = Record<string, any>;

const META: GoStruct = { struct: 'ObjectMetaData', fields: { name: 'string', description: 'string', userData1: 'string', userData2: 'string' } };
const GITOPS: GoStruct = { struct: 'GitOpsParams', fields: { gitOpsType: 'string', gitOpsReferenceObject: 'string', gitOpsResourceObject: 'string' } };
const object = (name: string, spec: Record<string, GoType>, extra: Record<string, GoType> = {}): GoStruct =>
  ({ struct: name, fields: { metadata: META, spec: { struct: `${name}Spec`, fields: spec }, ...extra } });

const OVERLAY = object('OverlayObject', {});
const PROPOSAL = object('ProposalObject', { encryption: 'string', hash: 'string', dhGroup: 'string' });
const HUB = object('HubObject', { publicIps: '[]string', certificateId: 'string', kubeConfig: 'string', gitOpsParam: GITOPS });
const DEVICE = object('DeviceObject', {
  publicIps: '[]string', forceHubConnectivity: 'bool', proxyHub: 'string', proxyHubPort: 'int', useHub4Internet: 'bool',
  dedicatedSFC: 'bool', certificateId: 'string', kubeConfig: 'string', gitOpsParam: GITOPS,
});
const HUBDEVICE = object('HubDeviceObject', { device: 'string', isDelegateHub: 'bool' });
const IPRANGE = object('IPRangeObject', { subnet: 'string', minIp: 'int', maxIp: 'int' });
const CERTIFICATE = object('CertificateObject', { isCA: 'bool', clusterType: 'string' },
  { data: { struct: 'CertificateObjectData', fields: { ca: 'string', cert: 'string', key: 'string' } } });

function goName(t: GoType): string {
  return typeof t === 'string' ? t : `module.${t.struct}`;
}

function zero(t: GoType): unknown {
  if (t === 'string') return '';
  if (t === 'bool') return false;
  if (t === 'int') return 0;
  if (t === '[]string') return null;
  return Object.fromEntries(Object.entries(t.fields).map(([k, f]) => [k, zero(f)]));
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Go's Decode into the struct: unknown keys ignored, keys matched case-insensitively, null leaves the zero value, the first type error reported. */
function goDecode(text: string, t: GoStruct): { value: J } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const c = text.trimStart()[0]!;
    if (!/[{["\-0-9tfn]/.test(c)) return { error: `invalid character '${c}' looking for beginning of value` };
    return { error: /end of JSON input|Unterminated/i.test((err as Error).message) ? 'unexpected EOF' : `invalid character in JSON (emulated; ${(err as Error).message})` };
  }
  const errors: string[] = [];
  const fill = (ft: GoType, v: unknown, path: string[], owner: string): unknown => {
    if (v === null || v === undefined) return zero(ft);
    const bad = (kind: string, type = goName(ft)) => {
      errors.push(path.length ? `json: cannot unmarshal ${kind} into Go struct field ${owner}.${path.join('.')} of type ${type}`
        : `json: cannot unmarshal ${kind} into Go value of type ${type}`);
      return zero(ft);
    };
    if (ft === 'string') return typeof v === 'string' ? v : bad(jsonKind(v));
    if (ft === 'bool') return typeof v === 'boolean' ? v : bad(jsonKind(v));
    if (ft === 'int') return typeof v === 'number' && Number.isInteger(v) ? v : bad(typeof v === 'number' ? `number ${v}` : jsonKind(v));
    if (ft === '[]string') {
      if (!Array.isArray(v)) return bad(jsonKind(v));
      return v.map((x) => (typeof x === 'string' ? x : (bad(jsonKind(x), 'string'), '')));
    }
    if (typeof v !== 'object' || Array.isArray(v)) return bad(jsonKind(v));
    const o = v as J;
    const out: J = {};
    for (const [k, f] of Object.entries(ft.fields)) {
      const key = k in o ? k : Object.keys(o).find((x) => x.toLowerCase() === k.toLowerCase());
      out[k] = fill(f, key === undefined ? undefined : o[key], [...path, k], ft.struct);
    }
    return out;
  };
  const value = fill(t, parsed, [], t.struct) as J;
  return errors.length ? { error: errors[0]! } : { value };
}

/** go-playground/validator v10.4.1's hostname_rfc1123 (it accepts underscores and capitals). */
const RFC1123 = /^([a-zA-Z0-9]{1}[a-zA-Z0-9_-]{0,62}){1}(\.[a-zA-Z0-9_]{1}[a-zA-Z0-9_-]{0,62})*?$/;

function validate(o: J, isIpRange: boolean): string | undefined {
  const bad: string[] = [];
  const name = o.metadata.name as string;
  if (name === '') bad.push('Name(required:)');
  else if (!RFC1123.test(name)) bad.push('Name(hostname_rfc1123:)');
  if (isIpRange) {
    const { subnet, minIp, maxIp } = o.spec as { subnet: string; minIp: number; maxIp: number };
    if (subnet === '') bad.push('Subnet(required:)');
    else if (!isIPv4(subnet)) bad.push('Subnet(ipv4:)');
    for (const [field, v] of [['MinIp', minIp], ['MaxIp', maxIp]] as const) {
      if (v < 1) bad.push(`${field}(gte:1)`);
      else if (v > 255) bad.push(`${field}(lte:255)`);
    }
    if (minIp !== 0 && maxIp !== 0 && minIp > maxIp) bad.push('Range(InValidateIPRange:)');
  }
  return bad.length ? `Input fields check error: [${bad.join(', ')}]` : undefined;
}

/** Go's base64.StdEncoding: strict padding, CR and LF skipped (the reported byte offset is approximate). */
function goBase64(s: string): { text: string } | { error: string } {
  const t = s.replace(/[\r\n]/g, '');
  const badChar = t.search(/[^A-Za-z0-9+/=]/);
  if (badChar >= 0) return { error: `illegal base64 data at input byte ${badChar}` };
  const pad = t.indexOf('=');
  const badPadding = pad >= 0 && (t.length - pad > 2 || /[^=]/.test(t.slice(pad)));
  if (t.length % 4 !== 0 || badPadding) return { error: `illegal base64 data at input byte ${pad >= 0 ? pad : t.length - (t.length % 4)}` };
  return { text: Buffer.from(t, 'base64').toString('utf8') };
}

/** SCC's UpdateK8sConfig: first cluster to `server`, CA data dropped, TLS verification off; undefined where SCC's decode fails. */
function rewriteKubeconfig(text: string, server: string): string | undefined {
  let doc: J;
  try {
    doc = YAML.parse(text) as J;
  } catch {
    return undefined;
  }
  // The universal deserializer needs apiVersion and kind; no clusters is "No cluster".
  if (typeof doc !== 'object' || doc === null || !doc.kind || !doc.apiVersion || !Array.isArray(doc.clusters) || !doc.clusters.length) return undefined;
  const entry = doc.clusters[0] as J;
  entry.cluster = { ...(entry.cluster ?? {}) };
  delete entry.cluster['certificate-authority-data'];
  entry.cluster['insecure-skip-tls-verify'] = true;
  entry.cluster.server = server;
  return YAML.stringify(doc);
}

/** The first PEM certificate through its END line, no newline after: GetKeypair's SplitAfter. */
function firstPem(pem: string): string {
  const end = '-----END CERTIFICATE-----';
  return pem.slice(0, pem.indexOf(end) + end.length);
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const meta = (name: string, userData1 = ''): J => ({ name, description: '', userData1, userData2: '' });
/** SCC's format_resource_name. */
const resourceName = (name: string) => name.replace(/-/g, '').toLowerCase();

// ---------------------------------------------------------------------------------------
// State.

interface IpRange {
  obj: J;
  used: Map<number, string>;
}

interface Overlay {
  obj: J;
  proposals: Map<string, J>;
  /** Each hub with SCC's hidden status.Ip. */
  hubs: Map<string, { obj: J; ip: string }>;
  devices: Map<string, J>;
  ipranges: Map<string, IpRange>;
  /** By stored name (device-<n>-cert, hub-<n>-cert, <overlay>-cert). */
  certificates: Map<string, J>;
  /** By "<end1>|<end2>". */
  connections: Map<string, J>;
}

/** Reached at the moments SCC would reach out; tests steer the emulation through them. */
export interface SccHooks {
  /** SCC's check of https://<ip>:6443 for a device (Mode 1: each public IP; Mode 2: the OIP through the control tunnel). Absent: it answers. */
  deviceApiReachable?: (device: string, ip: string) => boolean | Promise<boolean>;
  /** The same check of a hub's public IPs. Absent: the first answers. */
  hubApiReachable?: (hub: string, ip: string) => boolean | Promise<boolean>;
  /** rsync deploying a hub-device connection's CRs; a throw leaves the connection in state Error with its message. */
  onHubDeviceConnection?: (hub: string, device: string, dataOip: string) => void | Promise<void>;
}

export interface SccServerOptions {
  pki?: SccPki;
  host?: string;
  port?: number;
  /** Serve https with this certificate (SCC does when it finds server.cert and server.key). */
  tls?: { cert: string; key: string };
  hooks?: SccHooks;
  /**
   * Listen inside this namespace (a site of the NAT lab) instead of the test's own; `host`
   * is an address there. The test's own process reaches it at `operatorUrl`.
   */
  netnsPath?: string;
}

interface Reply {
  status: number;
  json?: unknown;
  text?: string;
}

class Fail extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const NO_OBJECT = 'No Object';

// ---------------------------------------------------------------------------------------
// The server.

export class SccServer {
  hooks: SccHooks;
  /** Every request answered, faults included. */
  readonly requests: Array<{ method: string; path: string; status: number }> = [];
  private readonly overlays = new Map<string, Overlay>();
  private readonly providerRanges = new Map<string, IpRange>();
  private readonly issued = new Map<string, IssuedCert>();
  private faults: Array<{ status: number; message: string }> = [];
  private listening = false;

  private constructor(private readonly server: Server, readonly host: string, public port: number, readonly pki: SccPki,
    private readonly ownPki: boolean, private readonly dir: string, readonly protocol: 'http' | 'https', hooks: SccHooks,
    private readonly netnsPath: string | undefined) {
    this.hooks = hooks;
  }

  static async start(options: SccServerOptions = {}): Promise<SccServer> {
    const pki = options.pki ?? await SccPki.create();
    const dir = mkdtempSync(join(tmpdir(), 'warren-scc-'));
    let self: SccServer | undefined;
    // A request cut by closeListener must not surface as an unhandled rejection.
    const handler = (req: IncomingMessage, res: ServerResponse) => void self!.handle(req, res).catch(() => res.destroy());
    const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
    self = new SccServer(server, options.host ?? '127.0.0.1', options.port ?? 0, pki, !options.pki, dir, options.tls ? 'https' : 'http', options.hooks ?? {}, options.netnsPath);
    await self.reopenListener();
    if (options.netnsPath) {
      // The operator's door, in the test's own namespace: stays open while the lab's is closed.
      const operator = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
      await new Promise<void>((resolve) => operator.listen(0, '127.0.0.1', resolve));
      self.operator = operator;
    }
    return self;
  }

  private operator: Server | undefined;
  private serial: Promise<void> = Promise.resolve();

  /** Where the agents reach SCC. */
  get url(): string {
    return `${this.protocol}://${this.host}:${this.port}`;
  }

  /** Where the test process reaches SCC: `url`, or its own door when SCC listens in a lab namespace. */
  get operatorUrl(): string {
    return this.operator ? `${this.protocol}://127.0.0.1:${(this.operator.address() as { port: number }).port}` : this.url;
  }

  /** An operator's call on the REST API (`path` under /scc/v1/): the answer's JSON; any status from 300 up throws with SCC's message. */
  async operatorCall(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${this.operatorUrl}/scc/v1/${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`SCC ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** The next `count` requests get `status` with `message`, whatever they ask. */
  failNext(count: number, status = 500, message = 'emulated SCC fault'): void {
    for (let i = 0; i < count; i++) this.faults.push({ status, message });
  }

  /** SCC unreachable: the port refuses connections and open ones are cut, until reopenListener. */
  async closeListener(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  async reopenListener(): Promise<void> {
    if (this.listening) return;
    const inNetns = this.netnsPath ? await listenInNetns(this.netnsPath, this.host, this.port) : undefined;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const listening = () => {
        this.server.off('error', reject);
        resolve();
      };
      if (inNetns) this.server.listen(inNetns.handle, listening);
      else this.server.listen(this.port, this.host, listening);
    });
    this.port = inNetns?.port ?? (this.server.address() as { port: number }).port;
    this.listening = true;
  }

  async destroy(): Promise<void> {
    await this.closeListener();
    if (this.operator) {
      const closed = new Promise<void>((resolve) => this.operator!.close(() => resolve()));
      this.operator.closeAllConnections();
      await closed;
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (this.ownPki) this.pki.destroy();
  }

  /** Files of the trust anchors a device or hub gets in data.ca. */
  caFiles(overlay: string): { root: string; overlay: string } {
    const ca = this.issued.get(`${overlay}-cert`);
    if (!ca) throw new Error(`overlay ${overlay} has no CA: it was never created`);
    return { root: this.pki.root.certFile, overlay: ca.certFile };
  }

  /** A certificate SCC had issued, by cert-manager name (hub-<hub>-cert, device-<device>-cert, <overlay>-cert). */
  certificate(name: string): IssuedCert | undefined {
    return this.issued.get(name);
  }

  /** The stored device object, as the next GET would return it before SCC's poller runs. */
  peekDevice(overlay: string, device: string): J | undefined {
    return this.overlays.get(overlay)?.devices.get(device);
  }

  // -- HTTP ------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://scc').pathname;
    let reply: Reply;
    const fault = this.faults.shift();
    if (fault) reply = { status: fault.status, text: fault.message };
    else {
      // One request at a time: SCC's check-then-create steps are not atomic either, but two
      // interleaved here would also race on the PKI's files (openssl writes <name>.key).
      const routed = this.serial.then(() => this.route(method, path, Buffer.concat(chunks).toString('utf8')));
      this.serial = routed.then(() => undefined, () => undefined);
      try {
        reply = await routed;
      } catch (err) {
        reply = err instanceof Fail ? { status: err.status, text: err.message } : { status: 500, text: `emulator bug: ${(err as Error).stack}` };
      }
    }
    this.requests.push({ method, path, status: reply.status });
    if (reply.json !== undefined) {
      // Go's encoder escapes <, > and & and ends with a newline.
      const body = JSON.stringify(reply.json).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(`${body}\n`);
    } else if (reply.text !== undefined) {
      res.writeHead(reply.status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(`${reply.text}\n`);
    } else {
      res.writeHead(reply.status).end();
    }
  }

  /** gorilla/mux: a path that matches no route is Go's 404, a known path with another verb 405. */
  private async route(method: string, path: string, body: string): Promise<Reply> {
    const prefix = '/scc/v1/';
    if (!path.startsWith(prefix)) return { status: 404, text: '404 page not found' };
    const s = path.slice(prefix.length).split('/').map(decodeURIComponent);
    const verbs = this.routes(s);
    if (!verbs) return { status: 404, text: '404 page not found' };
    const run = verbs[method];
    if (!run) return { status: 405 };
    return run(body);
  }

  private routes(s: string[]): Record<string, (body: string) => Promise<Reply>> | undefined {
    const [a, o, b, x, c, y] = s;
    const n = s.length;
    if (a === 'provider' && o === 'ipranges') {
      if (n === 2) return { POST: (t) => this.postIpRange(undefined, t), GET: async () => this.list([...this.providerRanges.values()].map((r) => r.obj)) };
      if (n === 3) return { GET: async () => this.getIpRange(undefined, b!), DELETE: async () => this.deleteIpRange(undefined, b!) };
      return undefined;
    }
    if (a !== 'overlays') return undefined;
    if (n === 1) return { POST: (t) => this.postOverlay(t), GET: async () => this.list([...this.overlays.values()].map((v) => v.obj)) };
    if (n === 2) return { GET: async () => ({ status: 200, json: this.overlay(o!, NO_OBJECT).obj }), PUT: async (t) => this.putOverlay(o!, t), DELETE: async () => this.deleteOverlay(o!) };
    if (b === 'proposals') return this.proposalRoutes(o!, x, n);
    if (b === 'hubs') {
      if (n <= 4) return this.hubRoutes(o!, x);
      if (n === 5 && c === 'connections') return { GET: async () => this.list(this.connectionsOf(this.hubOf(o!, x!).overlay, `Hub.${x}`)) };
      if (n === 5 && c === 'devices') return { POST: (t) => this.postHubDevice(o!, x!, t) };
      if (n === 6 && c === 'devices') return { DELETE: async () => this.deleteHubDevice(o!, x!, y!) };
      return undefined;
    }
    if (b === 'devices') {
      if (n <= 4) return this.deviceRoutes(o!, x);
      if (n === 5 && c === 'connections') return { GET: async () => this.list(this.connectionsOf(this.deviceOf(o!, x!).overlay, `Device.${x}`)) };
      return undefined;
    }
    if (b === 'ipranges') {
      if (n === 3) return { POST: (t) => this.postIpRange(o!, t), GET: async () => this.list([...this.overlay(o!).ipranges.values()].map((r) => r.obj)) };
      if (n === 4) return { GET: async () => this.getIpRange(o!, x!), DELETE: async () => this.deleteIpRange(o!, x!) };
      return undefined;
    }
    if (b === 'certificates') {
      if (n === 3) return { POST: (t) => this.postCertificate(o!, t), GET: async () => this.list([...this.overlay(o!).certificates.values()]) };
      if (n === 4) return { GET: async () => this.getCertificate(o!, x!), DELETE: async () => this.deleteCertificate(o!, x!) };
      return undefined;
    }
    return undefined;
  }

  // -- the generic handler (controller_handler.go) ---------------------------------------

  /** Empty body 400, decode and validation 422, then the caller's parent check, conflict check and create. */
  private parse(body: string, t: GoStruct): J {
    if (body.trim() === '') throw new Fail(400, 'Empty body');
    const d = goDecode(body, t);
    if ('error' in d) throw new Fail(422, d.error);
    const invalid = validate(d.value, t === IPRANGE);
    if (invalid) throw new Fail(422, invalid);
    return d.value;
  }

  private list(items: readonly unknown[]): Reply {
    return { status: 200, json: items.length ? items : null };
  }

  private overlay(name: string, missing = 'Fail to find overlay'): Overlay {
    const o = this.overlays.get(name);
    if (!o) throw new Fail(500, missing);
    return o;
  }

  /** The dependency check of a route under a hub: a missing overlay also reads as a missing hub. */
  private hubOf(overlay: string, hub: string): { overlay: Overlay; hub: { obj: J; ip: string } } {
    const o = this.overlays.get(overlay);
    const h = o?.hubs.get(hub);
    if (!o || !h) throw new Fail(500, 'Fail to find hub');
    return { overlay: o, hub: h };
  }

  private deviceOf(overlay: string, device: string): { overlay: Overlay; device: J } {
    const o = this.overlays.get(overlay);
    const d = o?.devices.get(device);
    if (!o || !d) throw new Fail(500, 'Fail to find device');
    return { overlay: o, device: d };
  }

  private conflict(exists: boolean, name: string): void {
    if (exists) throw new Fail(409, `Resource ${name} is available already`);
  }

  private proposalRoutes(overlay: string, name: string | undefined, segments: number): Record<string, (body: string) => Promise<Reply>> | undefined {
    if (segments === 3) {
      return {
        POST: async (body) => {
          const v = this.parse(body, PROPOSAL);
          const m = this.overlay(overlay).proposals;
          this.conflict(m.has(v.metadata.name), v.metadata.name);
          m.set(v.metadata.name, v);
          return { status: 201, json: v };
        },
        GET: async () => this.list([...this.overlay(overlay).proposals.values()]),
      };
    }
    if (segments !== 4) return undefined;
    return {
      GET: async () => ({ status: 200, json: this.found(this.overlay(overlay).proposals.get(name!)) }),
      // PUT is an upsert in SCC's DB layer: a missing object is created.
      PUT: async (body) => {
        const v = this.parse(body, PROPOSAL);
        this.sameName(name!, v);
        this.overlay(overlay).proposals.set(name!, v);
        return { status: 200, json: v };
      },
      DELETE: async () => {
        this.overlay(overlay).proposals.delete(name!);
        return { status: 204 };
      },
    };
  }

  private found<T>(v: T | undefined): T {
    if (v === undefined) throw new Fail(500, NO_OBJECT);
    return v;
  }

  private sameName(resource: string, v: J): void {
    if (v.metadata.name !== '' && v.metadata.name !== resource) throw new Fail(500, 'Resource name unmatched metadata name');
  }

  // -- overlays --------------------------------------------------------------------------

  private async postOverlay(body: string): Promise<Reply> {
    const v = this.parse(body, OVERLAY);
    const name = v.metadata.name as string;
    this.conflict(this.overlays.has(name), name);
    const o: Overlay = { obj: v, proposals: new Map(), hubs: new Map(), devices: new Map(), ipranges: new Map(), certificates: new Map(), connections: new Map() };
    this.overlays.set(name, o);
    // The overlay CA and its Issuer, both internal: they never block deleting the overlay.
    await this.ensureCert(o, name, 'Overlay', true, 'internal');
    return { status: 201, json: v };
  }

  /** An upsert, as every PUT in SCC's DB layer: a missing overlay appears, without a CA. */
  private putOverlay(name: string, body: string): Reply {
    const v = this.parse(body, OVERLAY);
    this.sameName(name, v);
    const o = this.overlays.get(name);
    if (o) o.obj = v;
    else this.overlays.set(name, { obj: v, proposals: new Map(), hubs: new Map(), devices: new Map(), ipranges: new Map(), certificates: new Map(), connections: new Map() });
    return { status: 200, json: v };
  }

  private async deleteOverlay(name: string): Promise<Reply> {
    const o = this.overlays.get(name);
    if (!o) return { status: 204 };
    const owned: Array<[string, Iterable<J>]> = [['proposal', o.proposals.values()], ['hub', [...o.hubs.values()].map((h) => h.obj)],
      ['device', o.devices.values()], ['iprange', [...o.ipranges.values()].map((r) => r.obj)], ['certificate', o.certificates.values()]];
    for (const [what, items] of owned) {
      for (const item of items) if (item.metadata.userData1 !== 'internal') throw new Fail(500, `Sub-resource found : ${what}`);
    }
    this.overlays.delete(name);
    return { status: 204 };
  }

  // -- ipranges --------------------------------------------------------------------------

  private rangesFor(overlay: string | undefined): Map<string, IpRange> {
    return overlay === undefined ? this.providerRanges : this.overlay(overlay).ipranges;
  }

  private async postIpRange(overlay: string | undefined, body: string): Promise<Reply> {
    const v = this.parse(body, IPRANGE);
    const ranges = this.rangesFor(overlay);
    this.conflict(ranges.has(v.metadata.name), v.metadata.name);
    // Provider ranges conflict with every overlay's, an overlay's with its own and the provider's.
    const others = overlay === undefined ? [...this.providerRanges.values(), ...[...this.overlays.values()].flatMap((o) => [...o.ipranges.values()])]
      : [...ranges.values(), ...this.providerRanges.values()];
    const base = (r: J) => r.spec.subnet.slice(0, r.spec.subnet.lastIndexOf('.') + 1);
    const clash = others.find((r) => base(r.obj) === base(v) && !(v.spec.minIp > r.obj.spec.maxIp || v.spec.maxIp < r.obj.spec.minIp));
    if (clash) throw new Fail(500, `Conflicted with IPRange object: ${clash.obj.metadata.name}`);
    ranges.set(v.metadata.name, { obj: v, used: new Map() });
    return { status: 201, json: v };
  }

  private getIpRange(overlay: string | undefined, name: string): Reply {
    return { status: 200, json: this.found(this.rangesFor(overlay).get(name)).obj };
  }

  private deleteIpRange(overlay: string | undefined, name: string): Reply {
    const ranges = this.rangesFor(overlay);
    const r = ranges.get(name);
    if (!r) throw new Fail(500, `Failed to get IPRange object: ${NO_OBJECT}`);
    if (r.used.size) throw new Fail(500, 'The IPRange object is in used');
    ranges.delete(name);
    return { status: 204 };
  }

  private allocate(ranges: Map<string, IpRange>, owner: string): string | undefined {
    for (const r of ranges.values()) {
      const { subnet, minIp, maxIp } = r.obj.spec as { subnet: string; minIp: number; maxIp: number };
      for (let i = minIp; i <= maxIp; i++) {
        if (!r.used.has(i)) {
          r.used.set(i, owner);
          return subnet.slice(0, subnet.lastIndexOf('.') + 1) + i;
        }
      }
    }
    return undefined;
  }

  private free(ranges: Map<string, IpRange>, ip: string | undefined): void {
    if (!ip) return;
    const dot = ip.lastIndexOf('.');
    for (const r of ranges.values()) if (r.obj.spec.subnet.startsWith(ip.slice(0, dot + 1))) r.used.delete(Number(ip.slice(dot + 1)));
  }

  // -- certificates ----------------------------------------------------------------------

  private certName(name: string, type: string): string | undefined {
    if (type === 'Overlay') return `${name}-cert`;
    if (type === 'Hub' || type === 'Device') return `${type.toLowerCase()}-${name}-cert`;
    return undefined;
  }

  /** GetOrCreateCertificateByType: the stored object and the cert-manager secret. */
  private async ensureCert(o: Overlay, name: string, type: 'Device' | 'Hub' | 'Overlay', isCA: boolean, userData1: string): Promise<J> {
    const stored = this.certName(name, type)!;
    const have = o.certificates.get(stored);
    if (have) return have;
    const signer = type === 'Overlay' ? this.pki.root : this.issued.get(`${o.obj.metadata.name}-cert`)!;
    if (!this.issued.has(stored)) this.issued.set(stored, await issueCert(this.dir, stored, signer, isCA));
    const v = { metadata: meta(name, userData1), spec: { isCA, clusterType: type }, data: { ca: '', cert: '', key: '' } };
    o.certificates.set(stored, v);
    return v;
  }

  /** The object with data filled from the secret, as CreateObject and GetObject return it. */
  private withData(o: Overlay, v: J): J {
    const stored = this.certName(v.metadata.name, v.spec.clusterType)!;
    const own = this.issued.get(stored)!;
    const chain = [this.pki.root.certPem];
    if (v.spec.clusterType !== 'Overlay') {
      chain.push(this.issued.get(`${o.obj.metadata.name}-cert`)!.certPem);
      if (v.spec.isCA) chain.push(own.certPem);
    }
    return { ...v, data: { ca: chain.map((p) => b64(firstPem(p))).join('___'), cert: b64(firstPem(own.certPem)), key: b64(own.keyPem) } };
  }

  private async postCertificate(overlay: string, body: string): Promise<Reply> {
    const v = this.parse(body, CERTIFICATE);
    v.data = { ca: '', cert: '', key: '' };
    const o = this.overlay(overlay);
    const stored = this.certName(v.metadata.name, v.spec.clusterType);
    if (stored === undefined) throw new Fail(500, `emulated: clusterType ${JSON.stringify(v.spec.clusterType)} gives SCC an empty certificate name, which cert-manager refuses`);
    this.conflict(o.certificates.has(stored), v.metadata.name);
    await this.ensureCert(o, v.metadata.name, v.spec.clusterType, v.spec.isCA, v.metadata.userData1);
    o.certificates.set(stored, v);
    return { status: 201, json: this.withData(o, v) };
  }

  private getCertificate(overlay: string, stored: string): Reply {
    const o = this.overlay(overlay);
    return { status: 200, json: this.withData(o, this.found(o.certificates.get(stored))) };
  }

  private deleteCertificate(overlay: string, stored: string): Reply {
    const o = this.overlay(overlay);
    if (!o.certificates.has(stored)) throw new Fail(500, `Certificate is not available: ${NO_OBJECT}`);
    o.certificates.delete(stored);
    this.issued.delete(stored);
    return { status: 204 };
  }

  // -- hubs ------------------------------------------------------------------------------

  private hubRoutes(overlay: string, hub: string | undefined): Record<string, (body: string) => Promise<Reply>> {
    if (hub === undefined) {
      return { POST: (t) => this.postHub(overlay, t), GET: async () => this.list([...this.overlay(overlay).hubs.values()].map((h) => h.obj)) };
    }
    return {
      GET: async () => ({ status: 200, json: this.found(this.overlay(overlay).hubs.get(hub)).obj }),
      PUT: async (body) => {
        const v = this.parse(body, HUB);
        this.sameName(hub, v);
        // The DB row is replaced whole: SCC's hidden status (the verified IP) is lost.
        this.overlay(overlay).hubs.set(hub, { obj: v, ip: '' });
        return { status: 200, json: v };
      },
      DELETE: async () => {
        const o = this.overlay(overlay);
        if (!o.hubs.has(hub)) return { status: 204 };
        for (const [key, c] of o.connections) if (key.split('|').includes(`Hub.${hub}`)) this.dropConnection(o, key, c);
        o.certificates.delete(`hub-${hub}-cert`);
        this.issued.delete(`hub-${hub}-cert`);
        o.hubs.delete(hub);
        return { status: 204 };
      },
    };
  }

  /** First IP the probe accepts, with the kubeconfig rewritten for it (checkKubeConfigAvail). */
  private async firstReachable(kubeconfig: string, ips: readonly string[], probe: (ip: string) => boolean | Promise<boolean>): Promise<{ ip: string; kubeConfig: string }> {
    for (const ip of ips) {
      const rewritten = rewriteKubeconfig(kubeconfig, `https://${ip}:6443`);
      if (rewritten === undefined) throw new Fail(500, 'Error in updating kubeconfig');
      if (await probe(ip)) return { ip, kubeConfig: b64(rewritten) };
    }
    throw new Fail(500, 'No public ip found workable for the cluster');
  }

  private async postHub(overlay: string, body: string): Promise<Reply> {
    const v = this.parse(body, HUB);
    const o = this.overlay(overlay);
    const name = v.metadata.name as string;
    this.conflict(o.hubs.has(name), name);
    if (v.spec.kubeConfig === '') throw new Fail(500, 'Unable to find resource name'); // GitOps needs cluster-sync-objects, not emulated
    const kube = goBase64(v.spec.kubeConfig);
    if ('error' in kube) throw new Fail(500, kube.error);
    const { ip, kubeConfig } = await this.firstReachable(kube.text, v.spec.publicIps ?? [], (x) => this.hooks.hubApiReachable?.(name, x) ?? true);
    v.spec.kubeConfig = kubeConfig;
    await this.ensureCert(o, name, 'Hub', false, 'internal');
    // Meshed with every hub already there; only when the overlay has a proposal, else SCC logs and goes on.
    if (o.proposals.size) {
      for (const [other, h] of o.hubs) {
        this.saveConnection(o, { name: `Hub.${name}`, type: 'Hub', ip }, { name: `Hub.${other}`, type: 'Hub', ip: h.ip }, 'Deployed', '');
      }
    }
    o.hubs.set(name, { obj: v, ip });
    return { status: 201, json: v };
  }

  // -- devices ---------------------------------------------------------------------------

  private deviceRoutes(overlay: string, device: string | undefined): Record<string, (body: string) => Promise<Reply>> {
    if (device === undefined) {
      return {
        POST: (t) => this.postDevice(overlay, t),
        GET: async () => {
          const o = this.overlay(overlay);
          for (const d of o.devices.values()) await this.pollRegistration(o, d);
          return this.list([...o.devices.values()]);
        },
      };
    }
    return {
      GET: async () => {
        const o = this.overlay(overlay);
        const d = this.found(o.devices.get(device));
        await this.pollRegistration(o, d);
        return { status: 200, json: d };
      },
      PUT: async (body) => {
        const v = this.parse(body, DEVICE);
        this.sameName(device, v);
        // ParseObject's fresh status replaces SCC's: Mode 0, no RegStatus, no DataIps.
        v.status = { Mode: 0, Ip: '', DataIps: {}, Data: {}, DelegatedHub: '' };
        this.overlay(overlay).devices.set(device, v);
        return { status: 200, json: v };
      },
      DELETE: async () => this.deleteDevice(overlay, device),
    };
  }

  private async postDevice(overlay: string, body: string): Promise<Reply> {
    const v = this.parse(body, DEVICE);
    const o = this.overlay(overlay);
    const name = v.metadata.name as string;
    this.conflict(o.devices.has(name), name);
    v.status = { Mode: 0, Ip: '', DataIps: {}, Data: {}, DelegatedHub: '' };
    if (v.spec.kubeConfig === '') throw new Fail(500, 'Unable to find resource name'); // Mode 3 needs cluster-sync-objects, not emulated
    const kube = goBase64(v.spec.kubeConfig);
    if ('error' in kube) throw new Fail(500, `Fail to decode kubeconfig: ${kube.error}`);
    v.status.Data.RegStatus = 'pending';
    const publicIps: string[] = v.spec.publicIps ?? [];
    if (publicIps.length) {
      v.status.Mode = 1;
      try {
        const { ip, kubeConfig } = await this.firstReachable(kube.text, publicIps, (x) => this.hooks.deviceApiReachable?.(name, x) ?? true);
        v.status.Ip = ip;
        v.spec.kubeConfig = kubeConfig;
      } catch (err) {
        throw new Fail(500, `Fail to verify public ip: ${(err as Error).message}`);
      }
    } else {
      v.status.Mode = 2;
      const oip = this.allocate(this.providerRanges, name);
      if (!oip) throw new Fail(500, `Fail to allocate overlay ip for ${name}: No available ip`);
      v.status.Ip = oip;
      // SCC checks proposals only after taking the OIP, and does not give it back.
      if (!o.proposals.size) throw new Fail(500, 'Error in getting proposals');
      v.status.Data.scc_ipsec_resource = this.sccIpsecResource(o, name, oip);
    }
    o.devices.set(name, v);
    return { status: 201, json: v };
  }

  /** What SCC stores for its own end of a Mode-2 control tunnel: its base certificate and private key included (SDEWAN.md §1.4). */
  private sccIpsecResource(o: Overlay, device: string, oip: string): string {
    const proposals = [...o.proposals.keys()];
    return `Ipsec-${JSON.stringify({
      Name: `localto${resourceName(device)}`, Type: 'VTI-based', Remote: '%any', AuthenticationMethod: 'pubkey', CryptoProposal: proposals,
      LocalIdentifier: 'CN=sdewan-controller-base', RemoteIdentifier: `CN=device-${device}-cert`, ForceCryptoProposal: '0', PresharedKey: '',
      PublicCert: b64(firstPem(this.pki.base.certPem)), PrivateCert: b64(this.pki.base.keyPem), SharedCA: b64(firstPem(this.pki.root.certPem)),
      Connections: { Name: `Conn${resourceName(device)}`, ConnectionType: 'tunnel', Mode: 'start', LocalSubnet: '', LocalSourceIp: '', LocalUpDown: '/etc/updown',
        LocalFirewall: '', RemoteSubnet: '', RemoteSourceIp: oip, RemoteUpDown: '', RemoteFirewall: '', CryptoProposal: proposals, Mark: '30', IfId: '' },
    })}`;
  }

  /** SCC's registration goroutine (PostRegister), run here before every read of the device instead of every 5 s. */
  private async pollRegistration(o: Overlay, d: J): Promise<void> {
    const s = d.status;
    if (s.Data?.RegStatus !== 'pending') return;
    const name = d.metadata.name as string;
    if (s.Mode === 2) {
      const kube = goBase64(d.spec.kubeConfig);
      if ('error' in kube || kube.text === '') {
        s.Data.RegStatus = 'failed';
        return;
      }
      if (!(await (this.hooks.deviceApiReachable?.(name, s.Ip) ?? true))) return;
      const rewritten = rewriteKubeconfig(kube.text, `https://${s.Ip}:6443`);
      if (rewritten === undefined) return; // SCC logs the error and polls again
      d.spec.kubeConfig = b64(rewritten);
    } else {
      await this.ensureCert(o, name, 'Device', false, 'internal');
    }
    s.Data.RegStatus = 'success';
  }

  private deleteDevice(overlay: string, device: string): Reply {
    const o = this.overlay(overlay);
    const d = o.devices.get(device);
    if (!d) return { status: 204 };
    if (d.status.Mode === 2) this.free(this.providerRanges, d.status.Ip);
    for (const [key, c] of o.connections) if (key.split('|').includes(`Device.${device}`)) this.dropConnection(o, key, c);
    o.certificates.delete(`device-${device}-cert`);
    this.issued.delete(`device-${device}-cert`);
    o.devices.delete(device);
    return { status: 204 };
  }

  // -- connections -----------------------------------------------------------------------

  private connectionsOf(o: Overlay, end: string): J[] {
    const all = [...o.connections.values()];
    return [...all.filter((c) => c.information.end1.name === end), ...all.filter((c) => c.information.end2.name === end)];
  }

  private saveConnection(o: Overlay, end1: J, end2: J, state: string, message: string): void {
    o.connections.set(`${end1.name}|${end2.name}`, {
      metadata: meta(`${end1.name}-${end2.name}`),
      information: { end1, end2, state, message },
    });
  }

  private dropConnection(o: Overlay, key: string, c: J): void {
    const { end1, end2 } = c.information as { end1: J; end2: J };
    for (const [mine, peer] of [[end1, end2], [end2, end1]] as const) {
      const d = mine.type === 'Device' ? o.devices.get(mine.name.slice('Device.'.length)) : undefined;
      if (d?.status.DataIps?.[peer.name]) {
        this.free(o.ipranges, d.status.DataIps[peer.name]);
        delete d.status.DataIps[peer.name];
      }
    }
    o.connections.delete(key);
  }

  /** hubdevice_objectmanager.go CreateObject, quirk included. */
  private async postHubDevice(overlay: string, hub: string, body: string): Promise<Reply> {
    const v = this.parse(body, HUBDEVICE);
    const { overlay: o, hub: h } = this.hubOf(overlay, hub);
    const device = v.spec.device as string;
    const d = o.devices.get(device);
    if (!d) throw new Fail(500, `Device ${device} is not defined: ${NO_OBJECT}`);
    await this.pollRegistration(o, d);
    // pkgerrors.Wrap(nil, ...) is nil: SCC answers 201 with an empty object.
    if (d.status.Data?.RegStatus !== 'success') return { status: 201, json: zero(HUBDEVICE) };
    const delegated = v.spec.isDelegateHub && d.status.DelegatedHub === '';
    const [hubEnd, devEnd] = [`Hub.${hub}`, `Device.${device}`];
    if (o.connections.has(`${hubEnd}|${devEnd}`) || o.connections.has(`${devEnd}|${hubEnd}`)) {
      throw new Fail(500, `The connection between Hub ${hub} and Device ${device} is already created`);
    }
    if (!o.proposals.size) throw new Fail(500, `Fail to setup connection between ${hub} and ${device}: Error in getting proposals`);
    // AllocateIP's error is dropped by SetupConnection: no range left means an empty OIP.
    const oip = this.allocate(o.ipranges, device) ?? '';
    if (oip) d.status.DataIps = { ...(d.status.DataIps ?? {}), [hubEnd]: oip };
    await this.ensureCert(o, hub, 'Hub', false, 'internal');
    await this.ensureCert(o, device, 'Device', false, 'internal');
    let state = 'Deployed';
    let message = '';
    try {
      await this.hooks.onHubDeviceConnection?.(hub, device, oip);
    } catch (err) {
      state = 'Error';
      message = (err as Error).message;
    }
    this.saveConnection(o, { name: hubEnd, type: 'Hub', ip: h.ip }, { name: devEnd, type: 'Device', ip: oip }, state, message);
    if (delegated) d.status.DelegatedHub = hub;
    return { status: 201, json: v };
  }

  private deleteHubDevice(overlay: string, hub: string, device: string): Reply {
    const { overlay: o } = this.hubOf(overlay, hub);
    const d = o.devices.get(device);
    if (!d) throw new Fail(500, `Device ${device} is not defined: ${NO_OBJECT}`);
    if (d.status.DelegatedHub === hub) d.status.DelegatedHub = '';
    for (const key of [`Hub.${hub}|Device.${device}`, `Device.${device}|Hub.${hub}`]) {
      const c = o.connections.get(key);
      if (c) this.dropConnection(o, key, c);
    }
    return { status: 204 };
  }
}
