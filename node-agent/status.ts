// `warren-agent status`: what the running agent knows, over a unix socket. The agent
// answers each connection with one JSON document; the CLI prints it as a table or as is.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { WarrenError } from '../lib/errors.js';
import { listenUnix } from '../lib/unix-socket.js';
import type { KubeStatus } from './kube/publisher.js';
import type { HubSaState } from './gateway/sa-state.js';

/** The SD-EWAN gateway role: which node carries the cluster's IPsec, and its tunnels when this node does. */
export interface GatewayStatus {
  /** active: this node holds the tunnels; standby: a candidate waiting; member: not a candidate. */
  role: 'active' | 'standby' | 'member';
  /** The active node, undefined while none is elected. */
  activeNode: string | undefined;
  device: string;
  /** kernel ESP or charon's kernel-libipsec; on the active node only. */
  dataPath?: string;
  /** Per hub: OIP, IKE and CHILD SA state, last rekey, bytes; on the active node only. */
  hubs: HubSaState[];
  /** Candidates: where the device identity came from (files, scc, scc-cache), or pending while SCC has not answered. */
  identity?: string;
  /** Why this candidate is not standing for election (SCC's refusal, SCC unreachable). */
  error?: string;
}

export interface PeerStatus {
  node: string;
  /** The peer's host-overlay address. */
  hostAddress: string;
  /** The path engine's phase: punching / checking / direct / relayed, or none (see reason). */
  path: string;
  /** Why there is no path, when path is none. */
  reason?: string;
  /**
   * When path is direct, what the endpoint is: lan (the peer's LAN address), host (its own
   * public address), reflexive (its NAT's mapping), peer-reflexive. When relayed, how this
   * node reaches its TURN server: udp, tcp or tls.
   */
  via?: string;
  endpoint: string | undefined;
  lastHandshake: string | undefined;
  rxBytes: number;
  txBytes: number;
}

export interface AgentStatus {
  node: string;
  interface: string;
  backend: string;
  publicKey: string;
  hostAddress: string;
  podSubnet: string;
  listenPort: number;
  nat: { mapping: string; reflexive: string | undefined; punchTtl: number | undefined };
  relay: string | undefined;
  /** How the relay reaches the TURN server: udp, tcp or tls (the relayed leg to peers is UDP). */
  relayTransport?: string;
  /** turn.issued: when the credential the allocation was made with expires (the agent moves to a new allocation before). */
  relayCredentialExpires?: string;
  /** Through the TURN relay since the agent started, every allocation it held. */
  relayTraffic: { sentBytes: number; receivedBytes: number };
  etcd: { publisher: string; watcher: string };
  peers: PeerStatus[];
  /** The Node publisher; undefined when the agent has no Kubernetes access (kubernetes.enabled false). */
  kubernetes?: KubeStatus;
  /** Undefined when the config has no gateway section. */
  gateway?: GatewayStatus;
}

export class StatusError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STATUS_UNAVAILABLE', message, options);
  }
}

function ago(iso: string | undefined, now: Date): string {
  if (!iso) return 'never';
  const s = Math.round((now.getTime() - Date.parse(iso)) / 1000);
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function relayLine(s: AgentStatus): string {
  const t = s.relayTraffic;
  const traffic = t.sentBytes || t.receivedBytes ? ` (sent ${bytes(t.sentBytes)}, received ${bytes(t.receivedBytes)})` : '';
  const expires = s.relayCredentialExpires ? `, credential until ${s.relayCredentialExpires}` : '';
  const over = s.relay && s.relayTransport ? ` over ${s.relayTransport.toUpperCase()}` : '';
  return `relay ${s.relay ?? 'none'}${over}${expires}${traffic}`;
}

function kubernetesLine(k: KubeStatus | undefined, now: Date): string {
  if (!k) return 'kubernetes off';
  const condition = k.condition ? `NetworkUnavailable ${k.condition.status} (${k.condition.reason})` : 'NetworkUnavailable not written yet';
  const sync = k.state === 'error'
    ? `ERROR (${k.failures} failed in a row): ${k.lastError}`
    : k.state === 'ok' ? `last sync ok ${ago(k.lastSyncAt, now)}` : 'starting';
  const patch = `last patch ${k.lastPatchAt ? `${ago(k.lastPatchAt, now)} (${(k.lastPatch ?? []).join(', ')})` : 'none'}`;
  return [`kubernetes node ${k.node} at ${k.server}: ${condition}`, sync, patch, ...(k.podCIDRConflict ? [k.podCIDRConflict] : [])].join('; ');
}

function gatewayLines(g: GatewayStatus | undefined, now: Date): string[] {
  if (!g) return [];
  const head = `SD-EWAN device ${g.device}: this node ${g.role}, active gateway ${g.activeNode ?? 'none elected'}${g.dataPath ? `, ESP by ${g.dataPath}` : ''}${g.identity ? `, identity from ${g.identity}` : ''}`;
  const error = g.error ? [`  not standing for election: ${g.error}`] : [];
  const rows = [['HUB', 'OIP', 'IKE', 'CHILD', 'REKEYED', 'IN', 'OUT']];
  for (const h of g.hubs) rows.push([h.hub, h.oip ?? '-', h.ike, h.child, h.lastRekey ? ago(h.lastRekey, now) : 'never', bytes(h.bytesIn), bytes(h.bytesOut)]);
  return g.hubs.length ? [head, ...error, ...table(rows)] : [head, ...error];
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** Pure: the status as the table a person reads. */
export function formatStatus(s: AgentStatus, now = new Date()): string {
  const head = [
    `node ${s.node}  ${s.hostAddress}  pods ${s.podSubnet}  ${s.interface} (${s.backend}) :${s.listenPort}`,
    `NAT ${s.nat.mapping}${s.nat.reflexive ? `, public ${s.nat.reflexive}` : ''}${s.nat.punchTtl ? `, punch TTL ${s.nat.punchTtl}` : ''}; ${relayLine(s)}; etcd publisher ${s.etcd.publisher}, watcher ${s.etcd.watcher}`,
    kubernetesLine(s.kubernetes, now),
    ...gatewayLines(s.gateway, now),
  ];
  const rows = [['PEER', 'PATH', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX', '']];
  for (const p of s.peers) rows.push([p.node, p.via ? `${p.path} (${p.via})` : p.path, p.endpoint ?? '-', ago(p.lastHandshake, now), bytes(p.rxBytes), bytes(p.txBytes), p.reason ?? '']);
  return [...head, '', ...(s.peers.length ? table(rows) : ['no peers yet'])].join('\n') + '\n';
}

/** Connecting needs write permission on the socket: root and its group only, whatever the umask the agent was started with. */
export const STATUS_SOCKET_MODE = 0o660;
/** The socket's directory, when the agent creates it: no way in for other users either. */
export const STATUS_DIR_MODE = 0o750;

/** Serves `get()` to every connection; replaces a stale socket file left by a killed agent. */
export async function serveStatus(path: string, get: () => Promise<AgentStatus>): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: STATUS_DIR_MODE });
  if (existsSync(path)) unlinkSync(path);
  const server = createServer((socket) => {
    get().then((s) => socket.end(JSON.stringify(s)), (err: unknown) => socket.end(JSON.stringify({ error: String(err) })));
    socket.on('error', () => {});
  });
  // Created with its mode (no moment under the agent's umask), and set again: what bind()
  // makes of the umask is the platform's, the chmod is not.
  await listenUnix(server, path, STATUS_SOCKET_MODE);
  chmodSync(path, STATUS_SOCKET_MODE);
  return server;
}

export function readStatus(path: string, timeoutMs = 5000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new StatusError(`the agent at ${path} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(new StatusError(`no agent answers at ${path} (${err.message}): is warren-agent running?`, { cause: err }));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const doc = JSON.parse(Buffer.concat(chunks).toString()) as AgentStatus & { error?: string };
      if (doc.error) reject(new StatusError(`the agent could not report its status: ${doc.error}`));
      else resolve(doc);
    });
  });
}
