// ICE-style connectivity checks (RFC 8445 section 7.2) over the prober's socket: they leave
// as WireGuard's port (the port share) and reach the peer's agent through its own port
// share, so an answered check proves the very path WireGuard will use, NAT mappings
// included. A check is a STUN Binding request whose USERNAME is "<to>:<from>" (who it is
// for, who sends it). The answer is a Binding success from the address the request went
// to (ICE's symmetric rule: anything else is not the path we asked about).
//
// Each agent is also a STUN server for its peers: a request naming this node is answered
// with XOR-MAPPED-ADDRESS of its source, then a triggered check goes back to that source
// (RFC 8445 section 7.3.1.4). Only answered checks count: a request we received proves
// the peer-to-us direction alone, and our answer may never arrive; the triggered check
// turns it into a proof both ways within one round trip.
//
// No authentication beyond USERNAME (ICE adds MESSAGE-INTEGRITY with per-session
// passwords): WireGuard authenticates the tunnel itself, so a spoofed request or answer
// can at worst point a peer's endpoint somewhere wrong, where no handshake completes,
// until the next round of checks moves it back (DIRECT_LOST_MS at the latest). It can
// never make traffic readable or inject any.
//
// The socket is shared with the prober's own STUN client and the hop count: responses are
// matched by transaction id, and anything that is not ours is counted and left alone.
import { formatEndpoint, sameEndpoint, type Endpoint } from '../nat/stun-address.js';
import { SOFTWARE } from '../nat/knobs.js';
import {
  bindingRequest, bindingSuccess, decodeStun, encodeStun, getText, hasValidFingerprint, isStun, StunAttr, StunMethod, textAttr,
  type DecodedStun, type StunMessage,
} from '../nat/stun.js';
import { systemTimers, type Timers } from '../nat/timers.js';
import type { UdpPort } from '../nat/udp.js';
import { CHECK_ANSWER_WINDOW_MS, DIRECT_LOST_MS, TRIGGERED_CHECK_HOLDOFF_MS } from './knobs.js';

/** The latest answered check toward a peer: where it went (WireGuard's endpoint for that peer) and when the answer came. */
export interface CheckSuccess {
  endpoint: Endpoint;
  at: number;
}

export interface ChecksCounters {
  /** Requests sent, triggered ones included. */
  sent: number;
  triggered: number;
  /** Answers to our checks (each recorded as a success). */
  answered: number;
  /** Peers' requests we answered. */
  served: number;
  /** STUN that is not a check for us nor an answer to one (the prober's STUN, a stranger's USERNAME, a late answer). */
  notForUs: number;
  /** Datagrams that are not STUN at all. */
  notStun: number;
  /** STUN-looking datagrams that fail to decode. */
  malformed: number;
  /** Sends the socket refused (no route to a private candidate, for one). */
  sendErrors: number;
}

export interface ChecksOptions {
  selfNode: string;
  /** The prober's port: sends queued behind punches, leaving as WGPORT. */
  port: UdpPort;
  timers?: Pick<Timers, 'now'>;
}

interface Pending {
  peer: string;
  endpoint: Endpoint;
  sentAt: number;
}

/** USERNAME of a check from `from` to `to`. Node names are DNS labels: never a colon. */
export function checkUsername(to: string, from: string): string {
  return `${to}:${from}`;
}

/** Pure: who a check is for and who sent it, or undefined for any other USERNAME. */
export function parseCheckUsername(text: string | undefined): { to: string; from: string } | undefined {
  if (text === undefined) return undefined;
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1 || text.indexOf(':', colon + 1) !== -1) return undefined;
  return { to: text.slice(0, colon), from: text.slice(colon + 1) };
}

/** Pure: the Binding request a check sends. */
export function checkRequest(to: string, from: string, transactionId?: Buffer): StunMessage {
  const msg = bindingRequest(transactionId, SOFTWARE);
  return { ...msg, attributes: [textAttr(StunAttr.Username, checkUsername(to, from)), ...msg.attributes] };
}

export class Checks {
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  /** Open transactions by id (hex), oldest first: pruned from the front. */
  private readonly pending = new Map<string, Pending>();
  /** When a check last went to peer+endpoint, for the triggered-check holdoff. */
  private readonly lastSent = new Map<string, number>();
  /** Per peer, the latest answer from each endpoint that answered (a peer has a handful of candidates). */
  private readonly successes = new Map<string, Map<string, CheckSuccess>>();
  private readonly count: ChecksCounters = { sent: 0, triggered: 0, answered: 0, served: 0, notForUs: 0, notStun: 0, malformed: 0, sendErrors: 0 };
  private closed = false;

  constructor(private readonly o: ChecksOptions) {
    const timers = o.timers ?? systemTimers;
    this.now = () => timers.now();
    this.unsubscribe = o.port.onMessage((data, from) => this.receive(data, from));
  }

  /** Sends one check to each endpoint; answers show up in successesOf(peerNode) and lastSuccess(peerNode). */
  check(peerNode: string, endpoints: readonly Endpoint[]): void {
    for (const e of endpoints) this.send(peerNode, e);
  }

  /** The latest answer from the peer, whichever endpoint it came from. */
  lastSuccess(peerNode: string): CheckSuccess | undefined {
    let latest: CheckSuccess | undefined;
    for (const s of this.successes.get(peerNode)?.values() ?? []) if (!latest || s.at >= latest.at) latest = s;
    return latest;
  }

  /** The latest answer from each of the peer's endpoints that answered (candidates.ts's preferredSuccess chooses). */
  successesOf(peerNode: string): CheckSuccess[] {
    return [...this.successes.get(peerNode)?.values() ?? []];
  }

  /** Drops what is known of a peer that left: a later answer from it counts as not for us. */
  forget(peerNode: string): void {
    this.successes.delete(peerNode);
    for (const [id, p] of this.pending) if (p.peer === peerNode) this.pending.delete(id);
    for (const key of this.lastSent.keys()) if (key.startsWith(`${peerNode}|`)) this.lastSent.delete(key);
  }

  counters(): ChecksCounters {
    return { ...this.count };
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
  }

  private send(peer: string, endpoint: Endpoint): void {
    if (this.closed) return;
    const now = this.now();
    this.prune(now);
    const msg = checkRequest(peer, this.o.selfNode);
    this.pending.set(msg.transactionId.toString('hex'), { peer, endpoint, sentAt: now });
    this.lastSent.set(`${peer}|${formatEndpoint(endpoint)}`, now);
    this.count.sent++;
    this.o.port.send(encodeStun(msg, { fingerprint: true }), endpoint).catch(() => this.count.sendErrors++);
  }

  private prune(now: number): void {
    for (const [id, p] of this.pending) {
      if (now - p.sentAt < CHECK_ANSWER_WINDOW_MS) break;
      this.pending.delete(id);
    }
    for (const [key, at] of this.lastSent) if (now - at >= CHECK_ANSWER_WINDOW_MS) this.lastSent.delete(key);
  }

  // A socket listener: nothing a datagram carries may throw out of here.
  private receive(data: Buffer, from: Endpoint): void {
    if (this.closed) return;
    if (!isStun(data)) {
      this.count.notStun++;
      return;
    }
    let msg: DecodedStun;
    try {
      msg = decodeStun(data);
      if (msg.fingerprintOffset !== undefined && !hasValidFingerprint(msg)) throw new Error('bad FINGERPRINT');
    } catch {
      this.count.malformed++;
      return;
    }
    if (msg.method !== StunMethod.Binding) {
      this.count.notForUs++;
    } else if (msg.cls === 'request') {
      this.serve(msg, from);
    } else if (msg.cls === 'success') {
      this.answered(msg, from);
    } else {
      this.count.notForUs++;
    }
  }

  private serve(request: DecodedStun, from: Endpoint): void {
    const names = parseCheckUsername(getText(request, StunAttr.Username));
    if (!names || names.to !== this.o.selfNode || names.from === this.o.selfNode) {
      this.count.notForUs++;
      return;
    }
    let answer: Buffer;
    try {
      answer = encodeStun(bindingSuccess(request, from, SOFTWARE), { fingerprint: true });
    } catch {
      this.count.malformed++; // a source address XOR-MAPPED-ADDRESS cannot carry: nothing to answer
      return;
    }
    this.count.served++;
    this.o.port.send(answer, from).catch(() => this.count.sendErrors++);
    const now = this.now();
    const last = this.lastSent.get(`${names.from}|${formatEndpoint(from)}`);
    const ok = this.successes.get(names.from)?.get(formatEndpoint(from));
    const recent = (last !== undefined && now - last < TRIGGERED_CHECK_HOLDOFF_MS)
      || (ok !== undefined && now - ok.at < TRIGGERED_CHECK_HOLDOFF_MS);
    if (recent) return;
    this.count.triggered++;
    this.send(names.from, from);
  }

  private answered(response: DecodedStun, from: Endpoint): void {
    const id = response.transactionId.toString('hex');
    const p = this.pending.get(id);
    // Not ours (the prober's STUN client, the hop count), too late, or from elsewhere than
    // where the check went: RFC 8445 section 7.2.5.2.1 fails a check whose answer is not symmetric.
    if (!p || !sameEndpoint(p.endpoint, from) || this.now() - p.sentAt >= CHECK_ANSWER_WINDOW_MS) {
      this.count.notForUs++;
      return;
    }
    this.pending.delete(id);
    this.count.answered++;
    let ofPeer = this.successes.get(p.peer);
    if (!ofPeer) this.successes.set(p.peer, ofPeer = new Map());
    const now = this.now();
    // Answers older than a direct path lives without one count for nothing: forgotten.
    for (const [key, s] of ofPeer) if (now - s.at >= DIRECT_LOST_MS) ofPeer.delete(key);
    ofPeer.set(formatEndpoint(p.endpoint), { endpoint: p.endpoint, at: now });
  }
}
