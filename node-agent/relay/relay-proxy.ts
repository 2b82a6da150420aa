// WireGuard through a TURN relay. WireGuard only speaks UDP to one endpoint per peer; for
// a peer reached through the relay, that endpoint is a local socket of the agent
// (127.0.0.1:p), one per peer. What WireGuard sends there leaves through this node's
// allocation, over the peer's channel, to the peer's relay address; what the allocation
// receives from a peer's relay address reaches WireGuard from that peer's local socket.
// WireGuard's roaming then points its endpoint at that socket by itself, so both ends
// end up relayed even when only one of them decided to relay.
//
// A handshake initiation is sent again every INITIATION_RESEND_MS until the peer answers
// (a response, cookie or data comes back on the link) or INITIATION_RESEND_FOR_MS pass.
// The first one often arrives before the peer has opened its own link, and the peer's
// TURN server drops what it has no permission for: WireGuard itself would try again only
// 5 s later. A copy that arrives after the original is refused by the peer's WireGuard as
// a replay (the same timestamp), which changes nothing.
import { createSocket, type Socket } from 'node:dgram';
import { formatEndpoint, type Endpoint } from '../nat/stun-address.js';
import type { TurnData } from '../nat/turn-client.js';
import { bindSocket, LOOPBACK } from '../nat/udp.js';
import { systemTimers, type TimerHandle, type Timers } from '../nat/timers.js';
import { bulkhead } from 'cockatiel';

/**
 * Links opened at once (each a CreatePermission and a ChannelBind): a node that learns a
 * thousand relayed peers together would otherwise send two thousand requests in one burst,
 * which coturn's socket drops, and every lost answer looks like a lost allocation.
 */
export const LINKS_OPENING_AT_ONCE = 16;

export const INITIATION_RESEND_MS = 250;

/** A lingering link that carries the peer's packets says so at most this often (onLinkRetiring). */
export const ROAM_NOTICE_MS = 200;
export const INITIATION_RESEND_FOR_MS = 2_000;

/** WireGuard's message type: its first byte, followed by three zero bytes. */
const WG_HANDSHAKE_INITIATION = 1;
const WG_INITIATION_LENGTH = 148;

function wireguardType(data: Buffer): number | undefined {
  return data.length >= 4 && data[1] === 0 && data[2] === 0 && data[3] === 0 ? data[0] : undefined;
}

/** What the proxy needs of a TURN allocation (TurnClient has it). */
export interface Relay {
  readonly relayed: Endpoint;
  createPermission(peers: readonly Endpoint[]): Promise<void>;
  bindChannel(peer: Endpoint): Promise<number>;
  send(peer: Endpoint, data: Buffer): Promise<void>;
  onData(listener: (d: TurnData) => void): () => void;
}

/** The loopback port WireGuard has as a relayed peer's endpoint: kept across agents (relay-state.ts). */
export interface RelayLinkPort {
  peer: Endpoint;
  port: number;
}

export interface RelayLinkStats {
  peerRelay: string;
  localEndpoint: string;
  toPeerBytes: number;
  fromPeerBytes: number;
}

interface Link {
  peer: Endpoint;
  socket: Socket;
  port: number;
  ready: Promise<void>;
  toPeerBytes: number;
  fromPeerBytes: number;
  /** The initiation being sent again until the peer answers. */
  resend?: { timer: TimerHandle; until: number };
  /** forget() with a delay: closes the link unless it is asked for again first. */
  closing?: TimerHandle;
  /** When the peer last sent through the link (timers' clock). */
  lastFromPeerAt?: number;
  /** When a packet through the lingering link was last told (onLinkRetiring). */
  roamNoticeAt?: number;
}

/** Bytes through the relay, added to by every proxy given it: outlives a replaced allocation. */
export interface RelayTraffic {
  sentBytes: number;
  receivedBytes: number;
}

export interface RelayProxyOptions {
  relay: Relay;
  traffic?: RelayTraffic;
  /** WireGuard's listen port on this node. */
  wgPort: number;
  /** Errors of the background path (a send that failed): the engine decides what to do. */
  onError?: (err: unknown) => void;
  /** The ports a previous agent's links had: WireGuard still sends there. */
  ports?: readonly RelayLinkPort[];
  /** A link was opened or closed (the agent saves ports() for its successor). */
  onLinks?: () => void;
  /**
   * A lingering link (forget with a delay) delivered a packet of the peer to WireGuard
   * (told at most every ROAM_NOTICE_MS per link), was closed, or was kept because the peer
   * still sends through it. WireGuard roams to where its peer's packets come from, so it
   * may point at the link: its endpoint must be set again, or it sends into a closed port
   * (or through a relay the peer no longer listens on) until the next reconcile.
   */
  onLinkRetiring?: () => void;
  timers?: Timers;
}


export class RelayProxy {
  private readonly links = new Map<string, Link>();
  private readonly unsubscribe: () => void;
  private closed = false;

  private readonly preferred: Map<string, number>;
  private readonly timers: Timers;
  private readonly opening = bulkhead(LINKS_OPENING_AT_ONCE, Number.POSITIVE_INFINITY);

  constructor(private readonly o: RelayProxyOptions) {
    this.timers = o.timers ?? systemTimers;
    this.preferred = new Map((o.ports ?? []).map((l) => [formatEndpoint(l.peer), l.port]));
    this.unsubscribe = o.relay.onData((d) => void this.fromRelay(d));
  }

  /** Opens the links a previous agent had, on their ports, before anyone asks: WireGuard's endpoints stay valid. */
  async restore(): Promise<void> {
    await Promise.allSettled((this.o.ports ?? []).map((l) => this.link(l.peer).ready));
  }

  /**
   * The bound links' ports, for the next agent or the next allocation. Not the lingering
   * ones: their peers went direct, and a link restored on the other side would have nobody
   * to close it. WireGuard may still point at one: the caller sets its endpoints again.
   */
  ports(): RelayLinkPort[] {
    return [...this.links.values()].filter((l) => l.port !== 0 && l.closing === undefined).map((l) => ({ peer: l.peer, port: l.port }));
  }

  /** The endpoint to give WireGuard for the peer whose relay address is `peerRelay`. */
  async endpointFor(peerRelay: Endpoint): Promise<string> {
    const link = this.link(peerRelay);
    await link.ready;
    return `${LOOPBACK}:${link.port}`;
  }

  /**
   * Stops relaying to a peer (it went direct, or left): now, or after `afterMs` unless the
   * link is asked for again meanwhile (WireGuard may still send to it until its endpoint
   * is changed).
   */
  forget(peerRelay: Endpoint, afterMs = 0): void {
    const key = formatEndpoint(peerRelay);
    const link = this.links.get(key);
    if (!link) return;
    if (afterMs > 0) {
      this.timers.clearTimeout(link.closing);
      link.closing = this.timers.setTimeout(() => this.retire(link, afterMs), afterMs);
      return;
    }
    this.closeLink(link);
  }

  /** A lingering link's time is up: closed, unless the peer still relays to us (then again later). */
  private retire(link: Link, afterMs: number): void {
    if (this.links.get(formatEndpoint(link.peer)) !== link) return;
    const busy = link.lastFromPeerAt !== undefined && this.timers.now() - link.lastFromPeerAt < afterMs;
    if (busy) link.closing = this.timers.setTimeout(() => this.retire(link, afterMs), afterMs);
    else this.closeLink(link);
    this.o.onLinkRetiring?.();
  }

  private closeLink(link: Link): void {
    this.timers.clearTimeout(link.closing);
    this.links.delete(formatEndpoint(link.peer));
    this.stopResend(link);
    link.socket.close();
    this.o.onLinks?.();
  }

  stats(): RelayLinkStats[] {
    return [...this.links.values()].map((l) => ({
      peerRelay: formatEndpoint(l.peer), localEndpoint: `${LOOPBACK}:${l.port}`, toPeerBytes: l.toPeerBytes, fromPeerBytes: l.fromPeerBytes,
    }));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const l of this.links.values()) {
      this.stopResend(l);
      this.timers.clearTimeout(l.closing);
      l.socket.close();
    }
    this.links.clear();
  }

  /** The link to `peer`, opened if need be; `wanted`: asked for by the engine, so a pending close is called off (traffic alone does not). */
  private link(peer: Endpoint, wanted = true): Link {
    const key = formatEndpoint(peer);
    const existing = this.links.get(key);
    if (existing) {
      if (wanted) {
        this.timers.clearTimeout(existing.closing);
        existing.closing = undefined;
      }
      return existing;
    }
    const socket = createSocket('udp4');
    const link: Link = { peer, socket, port: 0, toPeerBytes: 0, fromPeerBytes: 0, ready: Promise.resolve() };
    link.ready = (async () => {
      // The previous agent's port when it is free (it is once that agent has let go), else any.
      const port = this.preferred.get(key) ?? 0;
      await bindSocket(socket, port, LOOPBACK).catch(() => bindSocket(socket, 0, LOOPBACK));
      link.port = socket.address().port;
      socket.on('error', (err) => this.o.onError?.(err));
      socket.on('message', (data, from) => {
        // Only WireGuard on this node may use the link.
        if (from.address !== LOOPBACK || from.port !== this.o.wgPort) return;
        this.toPeer(link, data);
        if (wireguardType(data) === WG_HANDSHAKE_INITIATION && data.length === WG_INITIATION_LENGTH) this.resendUntilAnswered(link, data);
      });
      // A permission is per IP address; the channel saves 32 bytes a packet over Send indications.
      await this.opening.execute(async () => {
        await this.o.relay.createPermission([peer]);
        await this.o.relay.bindChannel(peer);
      });
      this.o.onLinks?.();
    })();
    this.links.set(key, link);
    link.ready.catch((err: unknown) => {
      this.links.delete(key);
      socket.close();
      this.o.onError?.(err);
    });
    return link;
  }

  private async fromRelay(d: TurnData): Promise<void> {
    if (this.closed) return;
    // A peer that chose the relay first reaches us before we chose it: open its link now.
    const link = this.link(d.peer, false);
    try {
      await link.ready;
    } catch {
      return; // reported by link()
    }
    // Closed meanwhile (the peer forgotten, the relay replaced): a send would throw.
    if (this.closed || this.links.get(formatEndpoint(d.peer)) !== link) return;
    link.fromPeerBytes += d.data.length;
    link.lastFromPeerAt = this.timers.now();
    if (this.o.traffic) this.o.traffic.receivedBytes += d.data.length;
    // Any WireGuard message from the peer (its own initiation included: ours was then
    // superseded) ends the resending.
    if (wireguardType(d.data) !== undefined) this.stopResend(link);
    link.socket.send(d.data, this.o.wgPort, LOOPBACK, (err) => err && this.o.onError?.(err));
    // The peer still relays (its WireGuard roamed back, or its switch lags): ours now points
    // here too. Told, so that its endpoint goes back to the direct one at once, rather than
    // riding a link that closes, or a relay about to be replaced, until the linger ends.
    const now = this.timers.now();
    if (link.closing !== undefined && (link.roamNoticeAt === undefined || now - link.roamNoticeAt >= ROAM_NOTICE_MS)) {
      link.roamNoticeAt = now;
      this.o.onLinkRetiring?.();
    }
  }

  private toPeer(link: Link, data: Buffer): void {
    link.toPeerBytes += data.length;
    if (this.o.traffic) this.o.traffic.sentBytes += data.length;
    this.o.relay.send(link.peer, data).catch((err: unknown) => this.o.onError?.(err));
  }

  private resendUntilAnswered(link: Link, initiation: Buffer): void {
    this.stopResend(link);
    const until = this.timers.now() + INITIATION_RESEND_FOR_MS;
    const again = (): void => {
      if (this.closed || this.links.get(formatEndpoint(link.peer)) !== link || this.timers.now() >= until) {
        link.resend = undefined;
        return;
      }
      this.toPeer(link, initiation);
      link.resend = { timer: this.timers.setTimeout(again, INITIATION_RESEND_MS), until };
    };
    link.resend = { timer: this.timers.setTimeout(again, INITIATION_RESEND_MS), until };
  }

  private stopResend(link: Link): void {
    if (!link.resend) return;
    this.timers.clearTimeout(link.resend.timer);
    link.resend = undefined;
  }
}
