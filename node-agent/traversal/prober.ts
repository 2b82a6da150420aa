// The agent's probe socket on PROBEPORT, seen through the port share (port-share.ts) as
// WireGuard's own port: STUN learns WGPORT's public mapping, punches open WGPORT's hole.
// Everything goes through the node-agent/nat clients; this only owns the socket, keeps
// its sends in order, and refuses to speak for WGPORT when the rewrite is not in place.
import type { Socket } from 'node:dgram';
import { classifyMapping, stunBinding, type BindingProbe, type MappingBehavior, type StunClientOptions } from '../nat/stun-client.js';
import type { Endpoint } from '../nat/stun-address.js';
import { bindUdp, sendWithTtl, udpPort, type UdpPort } from '../nat/udp.js';
import { PUNCH_PAYLOAD } from './knobs.js';
import { checkPortShare } from './port-share-check.js';

export interface ProberOptions {
  wgPort: number;
  /** 0 binds any free port (tests); the port share must name the port actually bound. */
  probePort: number;
  /** STUN clock and retransmission policy. */
  stun?: StunClientOptions;
  /** Proves the rewrite before each STUN round; the loopback check by default. */
  checkRewrite?: (prober: Prober) => Promise<void>;
}

export interface WgPortMapping {
  /** WGPORT's public endpoint as the first server that answered saw it. */
  reflexive: Endpoint;
  /** RFC 5780 mapping behaviour, when the servers that answered span two addresses. */
  behavior: MappingBehavior | undefined;
  /** One per server that answered, in the order given. */
  probes: BindingProbe[];
  /** Servers that did not answer, and why: one server down must not hide the mapping. */
  failed: { server: Endpoint; error: unknown }[];
}

export class Prober {
  /** The socket's view for STUN/TURN clients: sends queued behind any punch. */
  readonly port: UdpPort;
  private queue: Promise<unknown> = Promise.resolve();
  private closed: Promise<void> | undefined;

  constructor(private readonly socket: Socket, private readonly o: ProberOptions) {
    const raw = udpPort(socket);
    this.port = { send: (data, to) => this.inOrder(() => raw.send(data, to)), onMessage: raw.onMessage };
  }

  /** Binds the probe socket on every address of the node's namespace (loopback included: the rewrite check needs it). */
  static async open(o: ProberOptions): Promise<Prober> {
    return new Prober(await bindUdp(o.probePort), o);
  }

  get probePort(): number {
    return this.socket.address().port;
  }

  get wgPort(): number {
    return this.o.wgPort;
  }

  /** Throws PortShareInactiveError unless datagrams from this socket leave as WGPORT and STUN to WGPORT reaches it. */
  checkRewrite(): Promise<void> {
    if (this.o.checkRewrite) return this.o.checkRewrite(this);
    return checkPortShare({ probe: this.port, probePort: this.probePort, wgPort: this.o.wgPort, timers: this.o.stun?.timers });
  }

  /**
   * WGPORT's public mapping, asking every server at once from the one socket. Give
   * servers on two addresses (natlab's stunServers, or two STUN servers) to learn the
   * mapping behaviour too: an endpoint-dependent reflexive address is useless to peers.
   */
  async reflexiveOfWgPort(servers: readonly Endpoint[]): Promise<WgPortMapping> {
    if (servers.length === 0) throw new RangeError('reflexiveOfWgPort needs at least one STUN server');
    await this.checkRewrite();
    const settled = await Promise.allSettled(servers.map((s) => stunBinding(this.port, s, this.o.stun)));
    const probes: BindingProbe[] = [];
    const failed: WgPortMapping['failed'] = [];
    settled.forEach((r, i) => (r.status === 'fulfilled' ? probes.push(r.value) : failed.push({ server: servers[i]!, error: r.reason })));
    if (probes.length === 0) throw failed[0]!.error;
    const addresses = new Set(probes.map((p) => p.server.address));
    return { reflexive: probes[0]!.mapped, behavior: addresses.size >= 2 ? classifyMapping(probes) : undefined, probes, failed };
  }

  /**
   * One small-TTL datagram to `candidate`, leaving as WGPORT: it opens WireGuard's
   * mapping toward the candidate in our own NAT(s) and dies in the internet before the
   * far NAT can record it (the conntrack trap, TESTBED.md). `ttl` must reach past our own
   * NATs and not past the far ones.
   */
  punch(candidate: Endpoint, ttl: number, payload: Buffer = PUNCH_PAYLOAD): Promise<void> {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) return Promise.reject(new RangeError(`ttl ${ttl} is outside 1..255`));
    return this.inOrder(() => sendWithTtl(this.socket, payload, candidate, ttl));
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closed ??= new Promise((resolve) => this.socket.close(() => resolve()));
    return this.closed;
  }

  // The TTL is a socket option: a STUN (re)transmission sent while a punch holds a small
  // TTL would die with it. One queue for every send keeps each punch's TTL to itself.
  private inOrder<T>(send: () => Promise<T>): Promise<T> {
    const next = this.queue.then(send);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
