// WireGuard through a TURN relay. WireGuard only speaks UDP to one endpoint per peer; for
// a peer reached through the relay, that endpoint is a local socket of the agent
// (127.0.0.1:p), one per peer. What WireGuard sends there leaves through this node's
// allocation, over the peer's channel, to the peer's relay address; what the allocation
// receives from a peer's relay address reaches WireGuard from that peer's local socket.
// WireGuard's roaming then points its endpoint at that socket by itself, so both ends
// end up relayed even when only one of them decided to relay.
import { createSocket, type Socket } from 'node:dgram';
import { formatEndpoint, type Endpoint } from '../nat/stun-address.js';
import type { TurnData } from '../nat/turn-client.js';
import { bindSocket, LOOPBACK } from '../nat/udp.js';

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
}


export class RelayProxy {
  private readonly links = new Map<string, Link>();
  private readonly unsubscribe: () => void;
  private closed = false;

  private readonly preferred: Map<string, number>;

  constructor(private readonly o: RelayProxyOptions) {
    this.preferred = new Map((o.ports ?? []).map((l) => [formatEndpoint(l.peer), l.port]));
    this.unsubscribe = o.relay.onData((d) => void this.fromRelay(d));
  }

  /** Opens the links a previous agent had, on their ports, before anyone asks: WireGuard's endpoints stay valid. */
  async restore(): Promise<void> {
    await Promise.allSettled((this.o.ports ?? []).map((l) => this.link(l.peer).ready));
  }

  /** The bound links' ports, for the next agent. */
  ports(): RelayLinkPort[] {
    return [...this.links.values()].filter((l) => l.port !== 0).map((l) => ({ peer: l.peer, port: l.port }));
  }

  /** The endpoint to give WireGuard for the peer whose relay address is `peerRelay`. */
  async endpointFor(peerRelay: Endpoint): Promise<string> {
    const link = this.link(peerRelay);
    await link.ready;
    return `${LOOPBACK}:${link.port}`;
  }

  /** Stops relaying to a peer (it went direct, or left). */
  forget(peerRelay: Endpoint): void {
    const key = formatEndpoint(peerRelay);
    const link = this.links.get(key);
    if (!link) return;
    this.links.delete(key);
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
    for (const l of this.links.values()) l.socket.close();
    this.links.clear();
  }

  private link(peer: Endpoint): Link {
    const key = formatEndpoint(peer);
    const existing = this.links.get(key);
    if (existing) return existing;
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
        link.toPeerBytes += data.length;
        if (this.o.traffic) this.o.traffic.sentBytes += data.length;
        this.o.relay.send(peer, data).catch((err: unknown) => this.o.onError?.(err));
      });
      // A permission is per IP address; the channel saves 32 bytes a packet over Send indications.
      await this.o.relay.createPermission([peer]);
      await this.o.relay.bindChannel(peer);
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
    const link = this.link(d.peer);
    try {
      await link.ready;
    } catch {
      return; // reported by link()
    }
    link.fromPeerBytes += d.data.length;
    if (this.o.traffic) this.o.traffic.receivedBytes += d.data.length;
    link.socket.send(d.data, this.o.wgPort, LOOPBACK, (err) => err && this.o.onError?.(err));
  }
}
