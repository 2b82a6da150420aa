// warren-agent's one config file (JSON or YAML). Pure: text in, a validated config out,
// or an AgentConfigError naming the field and the value. Unknown fields are refused: a
// misspelt `stunServer` silently ignored would leave a node relayed for ever.
import { DEFAULT_CNI_LOG_FILE } from '../lib/cni-log.js';
import { hostname } from 'node:os';
import YAML from 'yaml';
import { WarrenError, errorMessage } from '../lib/errors.js';
import type { EtcdSettings } from '../lib/etcd/store.js';
import { etcdPrefixProblem } from '../lib/etcd/keys.js';
import { interfaceNameProblem, nodeNameProblem } from '../lib/names.js';
import { canonicalEndpoint } from './overlay/endpoint.js';
import { parseEndpoint, type Endpoint } from './nat/stun-address.js';
import { formatCidr, parseCidr } from '../lib/cidr.js';
import { isIPv4 } from 'node:net';

export class AgentConfigError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AGENT_CONFIG_INVALID', message, options);
  }
}

export interface TurnSettings {
  /** "ip:port" of the TURN server (coturn answers STUN there too). */
  server: string;
  /**
   * The node's expiring credential from etcd, written by the issuer (lib/turn-credential.ts,
   * coturn's use-auth-secret); false: the static username and password below.
   */
  issued: boolean;
  username?: string;
  /** Static credentials: exactly one of password and passwordFile. */
  password?: string;
  passwordFile?: string;
  /** TCP to `server` when UDP gets no answer (coturn listens on both); default true. */
  tcp: boolean;
  /** TLS to the TURN server, tried after UDP and TCP: the way out of sites that let only TCP 443 through. */
  tls?: TurnTlsSettings;
}

export interface TurnTlsSettings {
  /** "ip:port", usually port 443 (coturn's tls-listening-port). */
  server: string;
  /** The DNS name the server's certificate carries; without it the certificate must carry the server's IP address. */
  serverName?: string;
  /** PEM of the CAs that sign the server's certificate; Node's bundled public roots when absent. */
  caFile?: string;
}

export interface KubernetesSettings {
  /** The agent keeps its own Node object true (node-agent/kube/). */
  enabled: boolean;
  /** Undefined: the pod's service account (in-cluster). */
  kubeconfig?: string;
  /** spec.podCIDR(s) from node.json when the Node has none (the controller-manager does not allocate). */
  publishPodCIDR: boolean;
}

export interface MetricsSettings {
  /** "ip:port" of GET /metrics; undefined: the node's host-overlay address (node.json), port METRICS_PORT. */
  address?: string;
}

export interface GatewayHub {
  name: string;
  /** The hub's public IPv4 address; with SCC, undefined: the address SCC verified. */
  address?: string;
}

/** Registration through SD-EWAN's central controller (node-agent/gateway/scc/). */
export interface SccSettings {
  /** SCC's base URL, e.g. http://scc.example:31298 (`/scc/v1` is added). */
  url: string;
  overlay: string;
  /** The cluster's kubeconfig as SCC will use it (SCC checks it reaches the API). */
  kubeconfigFile: string;
  /** The CA of an https SCC's server certificate. */
  caFile?: string;
  /** Mode 1 (the cluster's API reachable at these addresses); empty: Mode 2, behind NAT. */
  publicIps: string[];
  /** How long one registration attempt may wait for SCC before it is retried later (or the last registration is used). */
  timeoutSeconds: number;
}

/** The SD-EWAN gateway role (node-agent/gateway/): this cluster as one SD-EWAN device. */
export interface GatewaySettings {
  /** Nodes that may be the active gateway; one is, elected through etcd. */
  candidates: string[];
  /** The device name SD-EWAN knows; its certificate's subject is CN=device-<device>-cert. */
  device: string;
  /** Undefined with scc: SCC issues the certificate, key and CAs. */
  certFile?: string;
  keyFile?: string;
  /** SD-EWAN's root CA and the overlay CA. */
  caFiles?: string[];
  /** Undefined: everything comes from this config (an overlay managed by hand). */
  scc?: SccSettings;
  /** Tried in this order: the first whose tunnel is up carries the overlay. */
  hubs: GatewayHub[];
  /** The overlay's proposals, e.g. aes256-sha256-modp4096; empty with scc: the overlay's, read from SCC. */
  proposals: string[];
  /** The overlay's address ranges (other devices' OIPs, hubs), routed through the gateway. */
  overlayRanges: string[];
  dpdSeconds: number;
  /**
   * Ports of the OIP that other sites reach, each to an endpoint in the cluster (SD-EWAN
   * expects the Kubernetes API at OIP:6443): an address, not a Service ClusterIP.
   */
  exports: { port: number; protocol: 'tcp' | 'udp'; target: string; targetPort: number }[];
}

/** The metrics port on the host-overlay address. */
export const METRICS_PORT = 9477;

export interface AgentConfig {
  nodeName: string;
  etcd: EtcdSettings;
  etcdPrefix: string;
  /** Holds node.json (written by warren-configgen) and keys/ (the private key, 0600). */
  stateDir: string;
  interface: string;
  listenPort: number;
  /** The agent's own UDP port, made to leave as listenPort for STUN and punch probes. */
  probePort: number;
  stunServers: string[];
  turn?: TurnSettings;
  /** Undefined: the uplink's MTU minus WireGuard's overhead. */
  mtu?: number;
  /** Where `warren-agent status` finds the running agent. */
  statusSocket: string;
  /** How often the whole overlay is reconciled even when nothing was signalled. */
  reconcileSeconds: number;
  kubernetes: KubernetesSettings;
  /** Undefined: no metrics (metricsAddress "off"). */
  metrics?: MetricsSettings;
  /** The CNI plugin's JSON lines (its conflist's logFile), followed for the CNI metrics. */
  cniLogFile: string;
  /** Undefined: no SD-EWAN gateway role. */
  gateway?: GatewaySettings;
}

const DEFAULTS = {
  etcdEndpoints: 'http://127.0.0.1:2379',
  etcdPrefix: '/warren',
  etcdTimeout: 60,
  stateDir: '/var/lib/warren',
  interface: 'warren',
  listenPort: 51820,
  probePort: 51821,
  statusSocket: '/run/warren/agent.sock',
  reconcileSeconds: 10,
  // configgen's --log-file default: what the plugin's conflist says.
  cniLogFile: DEFAULT_CNI_LOG_FILE,
};

const FIELDS = new Set(['nodeName', 'etcdEndpoints', 'etcdCACert', 'etcdCert', 'etcdKey', 'etcdPrefix', 'etcdTimeoutSeconds', 'stateDir',
  'interface', 'listenPort', 'probePort', 'stunServers', 'turn', 'mtu', 'statusSocket', 'reconcileSeconds',
  'kubernetes', 'metricsAddress', 'cniLogFile', 'gateway']);
const GATEWAY_FIELDS = new Set(['candidates', 'device', 'certFile', 'keyFile', 'caFiles', 'scc', 'hubs', 'proposals', 'overlayRanges', 'dpdSeconds', 'exports']);
const SCC_FIELDS = new Set(['url', 'overlay', 'kubeconfigFile', 'caFile', 'publicIps', 'timeoutSeconds']);
const IDENTITY_FILES = ['certFile', 'keyFile', 'caFiles'] as const;
const EXPORT_FIELDS = new Set(['port', 'protocol', 'to']);
const HUB_FIELDS = new Set(['name', 'address']);
/** `<enc>-<hash>-<dh>` as SD-EWAN's proposals are written (SDEWAN.md §2.5). */
const PROPOSAL = /^[a-z0-9]+(-[a-z0-9]+)+$/;
/** SCC's names: RFC 1123 labels (SDEWAN.md §1.1). */
const SDEWAN_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const TURN_FIELDS = new Set(['server', 'issued', 'username', 'password', 'passwordFile', 'tcp', 'tls']);
const TURN_TLS_FIELDS = new Set(['server', 'serverName', 'caFile']);
/** RFC 1123 host name: what a certificate's DNS SAN can match. */
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;
const KUBERNETES_FIELDS = new Set(['enabled', 'kubeconfig', 'publishPodCIDR']);

function bad(field: string, value: unknown, why: string): AgentConfigError {
  return new AgentConfigError(`${field} ${JSON.stringify(value)} ${why}`);
}

function str(doc: Record<string, unknown>, field: string, fallback?: string): string | undefined {
  const v = doc[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || v === '') throw bad(field, v, 'must be a non-empty string');
  return v;
}

function int(doc: Record<string, unknown>, field: string, min: number, max: number, fallback?: number): number | undefined {
  const v = doc[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(field, v, `must be a whole number from ${min} to ${max}`);
  return v;
}

function bool(doc: Record<string, unknown>, field: string, name: string): boolean | undefined {
  const v = doc[field];
  if (v !== undefined && typeof v !== 'boolean') throw bad(name, v, 'must be true or false');
  return v;
}

/** A nested mapping of the config, its unknown fields refused; `name` is its field name. */
function section(path: string, name: string, v: unknown, known: Set<string>, what: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(name, v, `must be a mapping with ${what}`);
  for (const [k, x] of Object.entries(v)) if (!known.has(k)) throw bad(`unknown field ${name}.${k}`, x, `in ${path}; known: ${[...known].join(', ')}`);
  return v as Record<string, unknown>;
}

/** Default: on in a pod (Kubernetes sets KUBERNETES_SERVICE_HOST there) or with a kubeconfig. */
function kubernetesSettings(path: string, v: unknown, env: Record<string, string | undefined>): KubernetesSettings {
  const k = v === undefined ? {} : section(path, 'kubernetes', v, KUBERNETES_FIELDS, 'enabled, kubeconfig, publishPodCIDR');
  const kubeconfig = absolutePath('kubernetes.kubeconfig', str(k, 'kubeconfig'));
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST);
  const enabled = bool(k, 'enabled', 'kubernetes.enabled') ?? (inCluster || kubeconfig !== undefined);
  if (enabled && !inCluster && kubeconfig === undefined) {
    throw bad('kubernetes.enabled', enabled, 'needs kubernetes.kubeconfig outside a pod (KUBERNETES_SERVICE_HOST is not set)');
  }
  return { enabled, kubeconfig, publishPodCIDR: bool(k, 'publishPodCIDR', 'kubernetes.publishPodCIDR') ?? true };
}

function metricsSettings(v: unknown): MetricsSettings | undefined {
  if (v === 'off') return undefined;
  if (v === undefined) return {};
  return { address: endpoint('metricsAddress', v, '"10.10.0.7:9477", or "off"') };
}

function list(doc: Record<string, unknown>, field: string, name: string, what: string): unknown[] {
  const v = doc[field];
  if (!Array.isArray(v) || v.length === 0) throw bad(name, v ?? null, `must be a non-empty list of ${what}`);
  return v;
}

function gatewaySettings(path: string, v: unknown): GatewaySettings | undefined {
  if (v === undefined) return undefined;
  const g = section(path, 'gateway', v, GATEWAY_FIELDS, [...GATEWAY_FIELDS].join(', '));
  const candidates = list(g, 'candidates', 'gateway.candidates', 'node names').map((c, i) => {
    const problem = typeof c === 'string' ? nodeNameProblem(c) : 'must be a string';
    if (problem) throw bad(`gateway.candidates[${i}]`, c, problem);
    return c as string;
  });
  const device = str(g, 'device');
  if (device === undefined || !SDEWAN_NAME.test(device)) throw bad('gateway.device', g.device ?? null, 'must be the SD-EWAN device name (lower-case letters, digits and dashes)');
  const scc = g.scc === undefined ? undefined : sccSettings(path, g.scc);
  // Two sources of one identity would leave it unclear which charon presents.
  if (scc) for (const f of IDENTITY_FILES) if (g[f] !== undefined) throw bad(`gateway.${f}`, g[f], 'must not be set with gateway.scc: SCC issues the certificate, key and CAs');
  const file = (field: string): string | undefined => {
    const f = absolutePath(`gateway.${field}`, str(g, field));
    if (f === undefined && !scc) throw bad(`gateway.${field}`, null, 'is required (or gateway.scc, to have SCC issue it)');
    return f;
  };
  const caFiles = scc ? undefined : list(g, 'caFiles', 'gateway.caFiles', 'absolute paths (the root and overlay CAs)').map((f, i) => {
    if (typeof f !== 'string' || !f.startsWith('/')) throw bad(`gateway.caFiles[${i}]`, f, 'must be an absolute path');
    return f;
  });
  const hubs = list(g, 'hubs', 'gateway.hubs', 'hubs ({name, address})').map((h, i) => {
    const hub = section(path, `gateway.hubs[${i}]`, h, HUB_FIELDS, 'name and address');
    const name = str(hub, 'name');
    if (name === undefined || !SDEWAN_NAME.test(name)) throw bad(`gateway.hubs[${i}].name`, hub.name ?? null, 'must be the SD-EWAN hub name');
    const address = hub.address;
    if (address === undefined && scc) return { name };
    if (typeof address !== 'string' || !isIPv4(address)) throw bad(`gateway.hubs[${i}].address`, address ?? null, `must be the hub's public IPv4 address${scc ? ' (or absent: the one SCC reports)' : ''}`);
    return { name, address };
  });
  hubs.forEach((h, i) => {
    if (hubs.findIndex((x) => x.name === h.name) !== i) throw bad(`gateway.hubs[${i}].name`, h.name, 'is listed twice');
  });
  const proposals = (scc && g.proposals === undefined ? [] : list(g, 'proposals', 'gateway.proposals', 'proposals, e.g. aes256-sha256-modp4096')).map((p, i) => {
    if (typeof p !== 'string' || !PROPOSAL.test(p)) throw bad(`gateway.proposals[${i}]`, p, 'must be a proposal such as aes256-sha256-modp4096');
    return p;
  });
  const overlayRanges = list(g, 'overlayRanges', 'gateway.overlayRanges', 'IPv4 CIDRs').map((r, i) => {
    try {
      const c = parseCidr(String(r));
      if (typeof r !== 'string' || c.family !== 4) throw new Error('not IPv4');
      return formatCidr(c);
    } catch {
      throw bad(`gateway.overlayRanges[${i}]`, r, 'must be an IPv4 CIDR such as 10.10.0.0/16');
    }
  });
  const exports = (g.exports === undefined ? [] : Array.isArray(g.exports) ? g.exports : [g.exports]).map((e, i) => {
    const x = section(path, `gateway.exports[${i}]`, e, EXPORT_FIELDS, 'port, to ("address:port") and protocol (tcp, udp)');
    const port = int({ [`gateway.exports[${i}].port`]: x.port }, `gateway.exports[${i}].port`, 1, 65535);
    if (port === undefined) throw bad(`gateway.exports[${i}].port`, null, 'is required');
    const protocol = x.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') throw bad(`gateway.exports[${i}].protocol`, protocol, 'must be tcp or udp');
    const to = typeof x.to === 'string' ? canonicalEndpoint(x.to) : undefined;
    const [target, targetPort] = to ? [to.slice(0, to.lastIndexOf(':')), Number(to.slice(to.lastIndexOf(':') + 1))] : [];
    if (!target || !isIPv4(target)) throw bad(`gateway.exports[${i}].to`, x.to ?? null, 'must be an IPv4 address and port in the cluster, e.g. "172.20.0.1:6443"');
    return { port, protocol: protocol as 'tcp' | 'udp', target, targetPort: targetPort! };
  });
  const taken = new Set<string>();
  exports.forEach((e, i) => {
    if (taken.has(`${e.protocol}/${e.port}`)) throw bad(`gateway.exports[${i}].port`, e.port, `is exported twice (${e.protocol})`);
    taken.add(`${e.protocol}/${e.port}`);
  });
  return {
    exports,
    candidates, device, certFile: file('certFile'), keyFile: file('keyFile'), caFiles, scc, hubs, proposals, overlayRanges,
    dpdSeconds: int({ 'gateway.dpdSeconds': g.dpdSeconds }, 'gateway.dpdSeconds', 1, 300, 2)!,
  };
}

function sccSettings(path: string, v: unknown): SccSettings {
  const c = section(path, 'gateway.scc', v, SCC_FIELDS, [...SCC_FIELDS].join(', '));
  const url = c.url;
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw bad('gateway.scc.url', url ?? null, 'must be SCC\'s http or https URL, e.g. "http://scc.example:31298"');
  const overlay = c.overlay;
  if (typeof overlay !== 'string' || !SDEWAN_NAME.test(overlay)) throw bad('gateway.scc.overlay', overlay ?? null, 'must be the SD-EWAN overlay name');
  const kubeconfigFile = absolutePath('gateway.scc.kubeconfigFile', typeof c.kubeconfigFile === 'string' ? c.kubeconfigFile : undefined);
  if (kubeconfigFile === undefined) throw bad('gateway.scc.kubeconfigFile', c.kubeconfigFile ?? null, 'must be the absolute path of the kubeconfig SCC registers the cluster with');
  const caFile = c.caFile === undefined ? undefined : absolutePath('gateway.scc.caFile', typeof c.caFile === 'string' ? c.caFile : undefined);
  if (c.caFile !== undefined && caFile === undefined) throw bad('gateway.scc.caFile', c.caFile, 'must be an absolute path');
  const publicIps = (c.publicIps === undefined ? [] : Array.isArray(c.publicIps) ? c.publicIps : [c.publicIps]).map((ip, i) => {
    if (typeof ip !== 'string' || !isIPv4(ip)) throw bad(`gateway.scc.publicIps[${i}]`, ip, 'must be an IPv4 address at which the cluster\'s API answers on 6443');
    return ip;
  });
  return { url: url as string, overlay, kubeconfigFile, caFile, publicIps, timeoutSeconds: int({ 'gateway.scc.timeoutSeconds': c.timeoutSeconds }, 'gateway.scc.timeoutSeconds', 5, 3600, 120)! };
}

function turnTls(path: string, v: unknown): TurnTlsSettings | undefined {
  if (v === undefined) return undefined;
  const t = section(path, 'turn.tls', v, TURN_TLS_FIELDS, 'server, and optionally serverName and caFile');
  const serverName = t.serverName;
  if (serverName !== undefined && (typeof serverName !== 'string' || !DNS_NAME.test(serverName))) throw bad('turn.tls.serverName', serverName, 'must be the DNS name on the TURN server\'s certificate, e.g. "turn.example.org"');
  const caFile = t.caFile;
  if (caFile !== undefined && (typeof caFile !== 'string' || !caFile.startsWith('/'))) throw bad('turn.tls.caFile', caFile, 'must be an absolute path');
  return { server: endpoint('turn.tls.server', t.server, '"192.0.2.10:443"'), ...(serverName !== undefined ? { serverName } : {}), ...(caFile !== undefined ? { caFile } : {}) };
}

function endpoint(field: string, v: unknown, example = '"192.0.2.10:3478"'): string {
  const e = typeof v === 'string' ? canonicalEndpoint(v) : undefined;
  if (!e) throw bad(field, v, `must be an address and port, e.g. ${example}`);
  return e;
}

function absolutePath(field: string, v: string | undefined): string | undefined {
  if (v !== undefined && !v.startsWith('/')) throw bad(field, v, 'must be an absolute path');
  return v;
}

/** `path` only names the file in messages; `env` supplies NODE_NAME as Kubernetes' downward API does. */
export function parseAgentConfig(path: string, text: string, env: Record<string, string | undefined> = process.env): AgentConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new AgentConfigError(`config file ${path} is neither JSON nor YAML: ${errorMessage(err).split('\n')[0]}`, { cause: err });
  }
  doc ??= {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new AgentConfigError(`config file ${path} must hold a mapping of fields`);
  const d = doc as Record<string, unknown>;
  for (const [k, v] of Object.entries(d)) {
    if (!FIELDS.has(k)) throw bad(`unknown field ${k}`, v, `in ${path}; known: ${[...FIELDS].join(', ')}`);
  }

  const nodeName = str(d, 'nodeName', env.NODE_NAME || hostname())!;
  const nodeProblem = nodeNameProblem(nodeName);
  if (nodeProblem) throw bad('nodeName', nodeName, nodeProblem);

  const rawEndpoints = d.etcdEndpoints ?? DEFAULTS.etcdEndpoints;
  const endpoints = typeof rawEndpoints === 'string' ? rawEndpoints.split(',').map((s) => s.trim()).filter(Boolean) : rawEndpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.some((e) => typeof e !== 'string' || e === '')) {
    throw bad('etcdEndpoints', rawEndpoints, 'must be a list of etcd endpoints (or a comma-separated string)');
  }
  const etcdPrefix = str(d, 'etcdPrefix', DEFAULTS.etcdPrefix)!;
  const prefixProblem = etcdPrefixProblem(etcdPrefix);
  if (prefixProblem) throw bad('etcdPrefix', etcdPrefix, prefixProblem);

  const ifname = str(d, 'interface', DEFAULTS.interface)!;
  const ifProblem = interfaceNameProblem(ifname);
  if (ifProblem) throw bad('interface', ifname, ifProblem);

  const listenPort = int(d, 'listenPort', 1, 65535, DEFAULTS.listenPort)!;
  const probePort = int(d, 'probePort', 1, 65535, DEFAULTS.probePort)!;
  if (probePort === listenPort) throw bad('probePort', probePort, 'must differ from listenPort');

  const rawStun = d.stunServers ?? [];
  if (!Array.isArray(rawStun)) throw bad('stunServers', rawStun, 'must be a list of "address:port"');
  const stunServers = rawStun.map((s, i) => endpoint(`stunServers[${i}]`, s));

  let turn: TurnSettings | undefined;
  if (d.turn !== undefined) {
    const t = section(path, 'turn', d.turn, TURN_FIELDS, 'server, and issued: true or username with password or passwordFile');
    const issued = t.issued ?? false;
    if (typeof issued !== 'boolean') throw bad('turn.issued', issued, 'must be true or false');
    const username = str(t, 'username');
    const password = str(t, 'password');
    const passwordFile = absolutePath('turn.passwordFile', str(t, 'passwordFile'));
    if (issued) {
      const given = username !== undefined ? ['turn.username', username] : password !== undefined ? ['turn.password', '(hidden)'] : passwordFile !== undefined ? ['turn.passwordFile', passwordFile] : undefined;
      if (given) throw bad(given[0]!, given[1]!, 'cannot go with turn.issued: true (the credential comes from etcd, written by warren-configgen admin turn-issuer)');
    } else {
      if (!username) throw bad('turn.username', t.username, 'is required unless turn.issued is true');
      if ((password === undefined) === (passwordFile === undefined)) throw bad('turn.password', password ?? passwordFile ?? null, 'give exactly one of turn.password and turn.passwordFile');
    }
    const tcp = bool(t, 'tcp', 'turn.tcp') ?? true;
    turn = { server: endpoint('turn.server', t.server), issued, username, password, passwordFile, tcp, tls: turnTls(path, t.tls) };
  }

  return {
    nodeName,
    etcd: {
      endpoints: endpoints as string[],
      caFile: absolutePath('etcdCACert', str(d, 'etcdCACert')),
      certFile: absolutePath('etcdCert', str(d, 'etcdCert')),
      keyFile: absolutePath('etcdKey', str(d, 'etcdKey')),
      timeoutMs: int(d, 'etcdTimeoutSeconds', 1, 86_400, DEFAULTS.etcdTimeout)! * 1000,
    },
    etcdPrefix,
    stateDir: absolutePath('stateDir', str(d, 'stateDir', DEFAULTS.stateDir))!,
    interface: ifname,
    listenPort,
    probePort,
    stunServers,
    turn,
    mtu: int(d, 'mtu', 1280, 65535),
    statusSocket: absolutePath('statusSocket', str(d, 'statusSocket', DEFAULTS.statusSocket))!,
    reconcileSeconds: int(d, 'reconcileSeconds', 1, 3600, DEFAULTS.reconcileSeconds)!,
    kubernetes: kubernetesSettings(path, d.kubernetes, env),
    metrics: metricsSettings(d.metricsAddress),
    cniLogFile: absolutePath('cniLogFile', str(d, 'cniLogFile', DEFAULTS.cniLogFile))!,
    gateway: gatewaySettings(path, d.gateway),
  };
}

/** An endpoint of the config, which parseAgentConfig has checked ("ip:port"). */
export function configEndpoint(text: string): Endpoint {
  const e = parseEndpoint(text);
  if (!e) throw new Error(`not an endpoint: ${text}`);
  return e;
}
