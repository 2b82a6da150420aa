// The executor around path.ts: per peer, it feeds stepPath the clock, the peer's
// candidates and the latest answered check, and carries out the actions: small-TTL
// punches through the prober, checks through Checks, relay links through the RelayProxy.
// What comes out is one desired WireGuard endpoint per peer; the agent reconciles
// WireGuard to it whenever onChange fires. Decisions stay in path.ts; the only state here
// is what the actions produced (which relay link a peer's endpoint goes through), and how
// a relay link ended is handed back to path.ts (opened, failed, the relay lost).
import { sameEndpoint, type Endpoint } from '../nat/stun-address.js';
import { systemTimers, type TimerHandle, type Timers } from '../nat/timers.js';
import type { NodeRecord } from '../signal/record.js';
import { endpointKind, peerCandidates, preferredSuccess, type EndpointKind } from './candidates.js';
import type { CheckSuccess } from './checks.js';
import { ENGINE_TICK_MS, FIRST_ENDPOINT_HOLD_MS, RELAY_LINK_LINGER_MS, RELAY_RETRY_MS } from './knobs.js';
import { relayLinkFailed, relayLinkOpened, relayLost, stepPath, type NoPathReason, type PathAction, type PathState, type PeerCandidates } from './path.js';

/** What the engine needs of the Prober. */
export interface EngineProber {
  punch(to: Endpoint, ttl: number): Promise<void>;
}

/** What the engine needs of Checks. */
export interface EngineChecks {
  check(peerNode: string, endpoints: readonly Endpoint[]): void;
  /** The latest answer from each endpoint of the peer that answered. */
  successesOf(peerNode: string): CheckSuccess[];
  forget(peerNode: string): void;
}

/** What the engine needs of the RelayProxy. */
export interface EngineRelay {
  endpointFor(peerRelay: Endpoint): Promise<string>;
  /** Closes the link now, or after `afterMs` unless it is asked for again meanwhile. */
  forget(peerRelay: Endpoint, afterMs?: number): void;
}

export interface EngineOptions {
  selfNode: string;
  prober: EngineProber;
  checks: EngineChecks;
  /** This node's relay; none means no fallback (peers that cannot go direct wait). */
  relay?: EngineRelay;
  /**
   * From hopsTo and punchTtlFor; 0 for a node without NAT, which must not punch: it has
   * no mapping to open, and its small-TTL packet would reach the far NAT as the first
   * packet of the flow (the conntrack trap on routers that accept unsolicited input,
   * which then moves that node's mapping for every new peer, not only this one).
   */
  punchTtl: number;
  timers?: Timers;
  /** The clock path.ts decides on; timers.now by default. */
  now?: () => number;
  /** desiredEndpoints() changed: reconcile WireGuard. */
  onChange: () => void;
  /** A peer's phase or endpoint changed (told once per change, as it happens: when a path was chosen goes in the log). */
  onPath?: (peer: PeerStatus) => void;
  /** A direct peer stopped answering its keepalive check: this node's NAT may have rebound (the agent asks STUN, rate-limited). */
  onSuspect?: (peerNode: string) => void;
  /** Failures of background actions (a punch the socket refused, a relay link that could not open). */
  onError?: (err: unknown) => void;
  /** Peers the previous agent had relayed (relayed-peers.ts): their first step takes the relay at once. */
  relayedBefore?: ReadonlySet<string>;
}

export type PeerPhase = PathState['phase'] | 'new';

export interface PeerStatus {
  node: string;
  publicKey: string;
  phase: PeerPhase;
  /** The desired WireGuard endpoint; undefined while there is no opinion yet. */
  endpoint: string | undefined;
  /** When the current phase began (engine clock), undefined before the first step. */
  since: number | undefined;
  /** Why there is no path, in phase none. */
  reason?: NoPathReason;
  /** Whether the endpoint given to WireGuard is a relay link. */
  relayed: boolean;
  /** What the direct endpoint is (the peer's LAN address, its NAT's mapping...), in phase direct. */
  via?: EndpointKind;
}

interface Peer {
  node: string;
  publicKey: string;
  candidates: PeerCandidates;
  state?: PathState;
  endpoint?: string;
  /** A first endpoint held back (FIRST_ENDPOINT_HOLD_MS) so that the two WireGuards' first handshakes do not cross. */
  held?: { endpoint: string; until: number };
  /** The peer relay address the endpoint goes through, when it is a relay link. */
  relayLink?: Endpoint;
  /** A relay link being opened; a newer action or the peer's removal supersedes it. */
  opening?: { token: number; peerRelay: Endpoint };
  relayBlockedUntil: number;
}

export class Engine {
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly peers = new Map<string, Peer>();
  private relay: EngineRelay | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private tokens = 0;
  private notified = desiredKey(new Map());
  private readonly reported = new Map<string, string>();
  private readonly relayedBefore: Set<string>;

  constructor(private readonly o: EngineOptions) {
    this.timers = o.timers ?? systemTimers;
    this.now = o.now ?? (() => this.timers.now());
    this.relay = o.relay;
    this.relayedBefore = new Set(o.relayedBefore);
    this.schedule();
  }

  /** The full set of peers from the signal watcher (this node's own record is skipped); new peers take their first step at once. */
  setPeers(records: ReadonlyMap<string, NodeRecord>): void {
    if (this.stopped) return;
    for (const [node, record] of records) {
      if (node === this.o.selfNode) continue;
      const candidates = peerCandidates(record);
      const peer = this.peers.get(node);
      if (peer) {
        // A hold after a failed link was for the peer's old relay address, not the new one.
        if (!sameRelay(peer.candidates.relay, candidates.relay)) peer.relayBlockedUntil = 0;
        peer.publicKey = record.publicKey;
        peer.candidates = candidates;
      } else {
        this.peers.set(node, { node, publicKey: record.publicKey, candidates, relayBlockedUntil: 0 });
      }
    }
    for (const peer of [...this.peers.values()]) if (!records.has(peer.node)) this.remove(peer);
    this.tick();
  }

  /**
   * A new relay (the TURN allocation came up, or was replaced) or none. Links of the old
   * one are gone with it: relayed peers ask the new one on their next step.
   */
  setRelay(relay: EngineRelay | undefined): void {
    this.relay = relay;
    for (const peer of this.peers.values()) {
      peer.opening = undefined;
      peer.relayLink = undefined;
      peer.relayBlockedUntil = 0;
      if (peer.state) peer.state = relayLost(peer.state, this.now());
    }
    this.tick();
  }

  /**
   * This node's own record changed (its NAT rebound, or now maps differently): peers start
   * over on it at once, punching first, while a peer relayed here would wait up to
   * DIRECT_RETRY_MS for its next round and miss theirs. Relayed peers check again now:
   * our packets open our NAT toward them before their full-TTL checks arrive. Direct
   * peers get their keepalive check now, for the same reason: called before the new
   * record is published, so that a direct peer may check us at once (path.ts, recheck).
   */
  retryDirectNow(): void {
    const now = this.now();
    for (const peer of this.peers.values()) {
      const s = peer.state;
      if ((s?.phase === 'relayed' || s?.phase === 'none') && !s.round) peer.state = { ...s, nextRoundAt: now };
      if (s?.phase === 'direct') peer.state = { ...s, lastSentAt: -Infinity };
    }
    this.tick();
  }

  /** By WireGuard public key: the endpoint to set, or undefined for no opinion (leave what WireGuard has). */
  desiredEndpoints(): Map<string, string | undefined> {
    return new Map([...this.peers.values()].map((p) => [p.publicKey, p.endpoint]));
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].sort((a, b) => (a.node < b.node ? -1 : 1)).map((p) => ({
      node: p.node, publicKey: p.publicKey, phase: p.state?.phase ?? 'new', endpoint: p.endpoint, since: p.state?.since, relayed: p.relayLink !== undefined && p.endpoint !== undefined,
      ...(p.state?.phase === 'none' ? { reason: p.state.reason } : {}),
      ...(p.state?.phase === 'direct' ? { via: endpointKind(p.candidates, p.state.endpoint) } : {}),
    }));
  }

  /** Stops the tick; relay links stay for whoever closes the relay. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.timers.setTimeout(() => {
      this.tick();
      this.schedule();
    }, ENGINE_TICK_MS);
  }

  private tick(): void {
    for (const peer of this.peers.values()) {
      try {
        if (peer.held && this.now() >= peer.held.until) {
          peer.endpoint = peer.held.endpoint;
          peer.held = undefined;
        }
        this.step(peer);
      } catch (err) {
        this.o.onError?.(err); // one peer's failure must not stop the others, nor the tick
      }
    }
    this.notifyIfChanged();
  }

  private step(peer: Peer): void {
    const now = this.now();
    // Of the endpoints that answered, the one path.ts sees as the latest success: the
    // peer's own address (its LAN address) before one through a NAT (candidates.ts).
    const lastSuccess = preferredSuccess(this.o.checks.successesOf(peer.node), peer.candidates, now);
    const { state, actions } = stepPath(peer.state, {
      now, peer: peer.candidates, ownRelay: !this.relay ? 'none' : now < peer.relayBlockedUntil ? 'blocked' : 'ready', ...(lastSuccess ? { lastSuccess } : {}),
      ...(peer.state === undefined && this.relayedBefore.has(peer.node) ? { wasRelayed: true } : {}),
    });
    // The predecessor's hint serves each peer's first step only: a peer that leaves and
    // comes back hours later starts like any other.
    this.relayedBefore.delete(peer.node);
    peer.state = state;
    for (const action of actions) this.execute(peer, action);
  }

  private execute(peer: Peer, action: PathAction): void {
    switch (action.kind) {
      case 'punch':
        if (this.o.punchTtl === 0) break;
        for (const to of action.to) this.o.prober.punch(to, this.o.punchTtl).catch((err: unknown) => this.o.onError?.(err));
        return;
      case 'check':
        this.o.checks.check(peer.node, action.to);
        return;
      case 'endpoint':
        peer.opening = undefined;
        this.dropRelayLink(peer, RELAY_LINK_LINGER_MS);
        this.give(peer, action.endpoint);
        return;
      case 'relay':
        this.openRelay(peer, action.peerRelay);
        return;
      case 'suspect':
        this.o.onSuspect?.(peer.node);
        return;
    }
  }

  // endpointFor binds a socket and installs the TURN permission and channel first, so
  // WireGuard is pointed at the link only once its packets can leave through it.
  private openRelay(peer: Peer, peerRelay: Endpoint): void {
    const relay = this.relay;
    if (!relay) return;
    const token = ++this.tokens;
    peer.opening = { token, peerRelay };
    const current = (): boolean => !this.stopped && this.peers.get(peer.node) === peer && peer.opening?.token === token && this.relay === relay;
    relay.endpointFor(peerRelay).then((endpoint) => {
      if (!current()) {
        // Superseded: the link is nobody's unless it is the one already in use.
        if (this.peers.get(peer.node) !== peer || !peer.relayLink || !sameEndpoint(peer.relayLink, peerRelay)) relay.forget(peerRelay);
        return;
      }
      peer.opening = undefined;
      if (peer.relayLink && !sameEndpoint(peer.relayLink, peerRelay)) relay.forget(peer.relayLink);
      peer.relayLink = peerRelay;
      if (peer.state) peer.state = relayLinkOpened(peer.state, peerRelay);
      this.give(peer, endpoint);
      this.notifyIfChanged();
    }, (err: unknown) => {
      if (!current()) return;
      peer.opening = undefined;
      // path.ts asks again once the relay is ready: held back for a while, then retried.
      peer.relayBlockedUntil = this.now() + RELAY_RETRY_MS;
      if (peer.state) peer.state = relayLinkFailed(peer.state, peerRelay);
      this.o.onError?.(err);
    });
  }

  // Only a peer's first endpoint is staggered: once WireGuard has one, a new endpoint
  // moves an existing session and starts no handshake.
  private give(peer: Peer, endpoint: string): void {
    if (peer.endpoint !== undefined || givesFirstEndpointFirst(this.o.selfNode, peer.node)) {
      peer.held = undefined;
      peer.endpoint = endpoint;
    } else {
      peer.held = { endpoint, until: peer.held?.until ?? this.now() + FIRST_ENDPOINT_HOLD_MS };
    }
  }

  private dropRelayLink(peer: Peer, afterMs?: number): void {
    if (peer.relayLink) this.relay?.forget(peer.relayLink, afterMs);
    peer.relayLink = undefined;
  }

  private reportPaths(): void {
    if (!this.o.onPath) return;
    for (const p of this.status()) {
      const key = `${p.phase} ${p.endpoint ?? '-'}`;
      if (p.phase === 'new' || this.reported.get(p.node) === key) continue;
      this.reported.set(p.node, key);
      try {
        this.o.onPath(p);
      } catch (err) {
        this.o.onError?.(err);
      }
    }
  }

  private remove(peer: Peer): void {
    this.reported.delete(peer.node);
    this.peers.delete(peer.node);
    this.o.checks.forget(peer.node);
    this.dropRelayLink(peer);
  }

  private notifyIfChanged(): void {
    this.reportPaths();
    const key = desiredKey(this.desiredEndpoints());
    if (key === this.notified) return;
    this.notified = key;
    try {
      this.o.onChange();
    } catch (err) {
      this.o.onError?.(err);
    }
  }
}

/** Pure: of two nodes about to give WireGuard their first endpoint for each other, the one whose name sorts first does it at once (FIRST_ENDPOINT_HOLD_MS). */
export function givesFirstEndpointFirst(selfNode: string, peerNode: string): boolean {
  return selfNode < peerNode;
}

function sameRelay(a: Endpoint | undefined, b: Endpoint | undefined): boolean {
  return a === undefined || b === undefined ? a === b : sameEndpoint(a, b);
}

function desiredKey(desired: Map<string, string | undefined>): string {
  return JSON.stringify([...desired].sort(([a], [b]) => (a < b ? -1 : 1)));
}
