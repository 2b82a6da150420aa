// The relay as the next agent takes it over: the TURN allocation (known to the server by
// its 5-tuple, so the successor binds the same local port), its channel numbers, and the
// loopback port WireGuard has as each relayed peer's endpoint. With all three unchanged,
// neither this node's WireGuard nor the peers (whose records name the same relay address)
// see anything change across a restart or an upgrade.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/write-file.js';
import { formatEndpoint, parseEndpoint, type Endpoint } from '../nat/stun-address.js';
import type { TurnSnapshot } from '../nat/turn-client.js';
import type { RelayLinkPort } from './relay-proxy.js';
import { rotationAt, type TurnCredential } from '../../lib/turn-credential.js';
import type { RelayTransport } from './turn-transports.js';

const TRANSPORTS: readonly RelayTransport[] = ['udp', 'tcp', 'tls'];

export const RELAY_STATE_FILE = 'relay.json';

export interface RelayState {
  /** The TURN server and user the allocation belongs to: another config means another allocation. */
  server: string;
  username: string;
  /** The local port of the allocation's 5-tuple. */
  localPort: number;
  /**
   * How the allocation reaches the server. Over TCP or TLS it ended with the previous
   * agent's connection: only the links' ports are worth keeping then.
   */
  transport: RelayTransport;
  turn: TurnSnapshot;
  links: RelayLinkPort[];
  /**
   * With issued credentials, the one the allocation was made with: coturn takes its
   * Refreshes only under that username, so the successor needs its password (the file is
   * 0600, and the credential expires).
   */
  credential?: TurnCredential;
}

interface RelayStateDoc {
  server: string;
  username: string;
  localPort: number;
  transport?: RelayTransport;
  relayed: string;
  channels: { channel: number; peer: string }[];
  links: { peer: string; port: number }[];
  credential?: { password: string; issuedAt: string; expiresAt: string };
}

const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536;

function endpoint(text: unknown): Endpoint {
  const e = typeof text === 'string' ? parseEndpoint(text) : undefined;
  if (!e) throw new Error('endpoint');
  return e;
}

export function formatRelayState(s: RelayState): string {
  const doc: RelayStateDoc = {
    server: s.server,
    username: s.username,
    localPort: s.localPort,
    transport: s.transport,
    relayed: formatEndpoint(s.turn.relayed),
    channels: s.turn.channels.map((c) => ({ channel: c.channel, peer: formatEndpoint(c.peer) })),
    links: s.links.map((l) => ({ peer: formatEndpoint(l.peer), port: l.port })),
    ...(s.credential ? { credential: { password: s.credential.password, issuedAt: s.credential.issuedAt.toISOString(), expiresAt: s.credential.expiresAt.toISOString() } } : {}),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Pure: the file's text -> the state, or undefined for anything not exactly what formatRelayState writes. */
export function parseRelayState(text: string): RelayState | undefined {
  try {
    const d = JSON.parse(text) as Partial<RelayStateDoc>;
    if (typeof d.server !== 'string' || typeof d.username !== 'string' || !isPort(d.localPort)) return undefined;
    if (!Array.isArray(d.channels) || !Array.isArray(d.links)) return undefined;
    // Absent in files of agents before TCP and TLS: they relayed over UDP only.
    const transport = d.transport ?? 'udp';
    if (!TRANSPORTS.includes(transport)) return undefined;
    const channels = d.channels.map((c) => {
      if (!Number.isInteger(c?.channel)) throw new Error('channel');
      return { channel: c.channel, peer: endpoint(c.peer) };
    });
    const links = d.links.map((l) => {
      if (!isPort(l?.port)) throw new Error('link');
      return { peer: endpoint(l.peer), port: l.port };
    });
    const credential = d.credential === undefined ? undefined : savedCredential(d.username, d.credential);
    return { server: d.server, username: d.username, localPort: d.localPort, transport, turn: { relayed: endpoint(d.relayed), channels }, links, ...(credential ? { credential } : {}) };
  } catch {
    return undefined;
  }
}

function savedCredential(username: string, c: unknown): TurnCredential {
  const r = c as Record<string, unknown> | null;
  if (typeof r?.password !== 'string' || typeof r.issuedAt !== 'string' || typeof r.expiresAt !== 'string') throw new Error('credential');
  const issuedAt = new Date(r.issuedAt);
  const expiresAt = new Date(r.expiresAt);
  if (Number.isNaN(issuedAt.getTime()) || Number.isNaN(expiresAt.getTime())) throw new Error('credential');
  return { username, password: r.password, issuedAt, expiresAt };
}

/**
 * Pure: the saved allocation can be resumed under the configured TURN server and credentials
 * (a UDP one: TCP and TLS allocations end with their connection):
 * the same static user, or (issued) its own credential, not yet due for rotation.
 */
export function relayStateFits(s: RelayState, server: Endpoint, turn: { issued: false; username: string } | { issued: true; now: Date }): boolean {
  if (s.transport !== 'udp' || s.server !== formatEndpoint(server)) return false;
  if (!turn.issued) return s.credential === undefined && s.username === turn.username;
  return s.credential !== undefined && turn.now < rotationAt(s.credential);
}

export function readRelayState(stateDir: string): RelayState | undefined {
  try {
    return parseRelayState(readFileSync(join(stateDir, RELAY_STATE_FILE), 'utf8'));
  } catch {
    return undefined; // none left
  }
}

export function writeRelayState(stateDir: string, s: RelayState): void {
  writeFileAtomic(join(stateDir, RELAY_STATE_FILE), formatRelayState(s), 0o600);
}
