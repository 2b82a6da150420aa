// The agent's Prometheus metrics (prom-client, a registry of its own). The peer and relay
// metrics are read at each scrape from the same status document `warren-agent status`
// prints (one WireGuard dump per scrape); the CNI metrics are counted as the plugin's log
// lines arrive (cni-log-follower.ts).
//
//   warren_peers{path}                                   gauge: peers by path (direct, relayed, checking, punching, none)
//   warren_peer_last_handshake_age_seconds{peer}         gauge: absent until a first handshake
//   warren_peer_received_bytes_total{peer}               counter (WireGuard's, per peer)
//   warren_peer_sent_bytes_total{peer}                   counter
//   warren_relay_allocated                               gauge: 1 while the node holds a TURN allocation
//   warren_relay_transport{transport}                    gauge: 1 for how the relay reaches TURN (udp, tcp, tls), 0 for the others
//   warren_relay_received_bytes_total                    counter: from peers through the relay
//   warren_relay_sent_bytes_total                        counter: to peers through the relay
//   warren_cni_calls_total{verb,result}                  counter: result ok or error
//   warren_cni_call_duration_seconds{verb}               histogram (calls whose line carries a duration)
// plus prom-client's process_* and nodejs_* metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { countPaths, type PathLabel } from '../paths.js';
import type { AgentStatus } from '../status.js';
import type { CniCall } from './cni-log.js';

export interface PeerSample {
  peer: string;
  /** Undefined until a first handshake. */
  handshakeAgeSeconds?: number;
  receivedBytes: number;
  sentBytes: number;
}

export interface MetricsSample {
  paths: Record<PathLabel, number>;
  peers: PeerSample[];
  relayAllocated: boolean;
  /** udp, tcp or tls while the node holds an allocation. */
  relayTransport: string | undefined;
  relay: { receivedBytes: number; sentBytes: number };
}

/** Pure: what the status document says, as metric values. */
export function sampleOf(s: AgentStatus, now: Date): MetricsSample {
  return {
    paths: countPaths(s.peers.map((p) => p.path)),
    peers: s.peers.map((p) => ({
      peer: p.node,
      handshakeAgeSeconds: p.lastHandshake === undefined ? undefined : Math.max(0, (now.getTime() - Date.parse(p.lastHandshake)) / 1000),
      receivedBytes: p.rxBytes,
      sentBytes: p.txBytes,
    })),
    relayAllocated: s.relay !== undefined,
    relayTransport: s.relay !== undefined ? s.relayTransport : undefined,
    relay: { receivedBytes: s.relayTraffic.receivedBytes, sentBytes: s.relayTraffic.sentBytes },
  };
}

/** Every label, zero included: a dashboard's series do not come and go. */
const RELAY_TRANSPORTS = ['udp', 'tcp', 'tls'] as const;

/** Seconds: a pod's ADD or DEL takes ~50 ms here, fifty at once on two cores ~1.6 s. */
const CNI_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly peers: Gauge<'path'>;
  private readonly handshakeAge: Gauge<'peer'>;
  private readonly peerReceived: Counter<'peer'>;
  private readonly peerSent: Counter<'peer'>;
  private readonly relayAllocated: Gauge;
  private readonly relayTransport: Gauge<'transport'>;
  private readonly relayReceived: Counter;
  private readonly relaySent: Counter;
  private readonly cniCalls: Counter<'verb' | 'result'>;
  private readonly cniDuration: Histogram<'verb'>;
  private readonly now: () => Date;

  constructor(private readonly status: () => Promise<AgentStatus>, options: { processMetrics?: boolean; now?: () => Date } = {}) {
    const registers = [this.registry];
    this.now = options.now ?? (() => new Date());
    this.peers = new Gauge({ name: 'warren_peers', help: 'Peers by path: direct, relayed, checking, punching, none (no path yet).', labelNames: ['path'], registers });
    this.handshakeAge = new Gauge({ name: 'warren_peer_last_handshake_age_seconds', help: 'Seconds since the last WireGuard handshake with the peer; absent before the first.', labelNames: ['peer'], registers });
    this.peerReceived = new Counter({ name: 'warren_peer_received_bytes_total', help: 'Bytes WireGuard received from the peer.', labelNames: ['peer'], registers });
    this.peerSent = new Counter({ name: 'warren_peer_sent_bytes_total', help: 'Bytes WireGuard sent to the peer.', labelNames: ['peer'], registers });
    this.relayAllocated = new Gauge({ name: 'warren_relay_allocated', help: '1 while the node holds a TURN allocation (its relay), else 0.', registers });
    this.relayTransport = new Gauge({ name: 'warren_relay_transport', help: '1 for the transport the TURN relay reaches its server over (udp, tcp, tls), 0 for the others.', labelNames: ['transport'], registers });
    this.relayReceived = new Counter({ name: 'warren_relay_received_bytes_total', help: 'Bytes received from peers through the TURN relay.', registers });
    this.relaySent = new Counter({ name: 'warren_relay_sent_bytes_total', help: 'Bytes sent to peers through the TURN relay.', registers });
    this.cniCalls = new Counter({ name: 'warren_cni_calls_total', help: 'CNI plugin calls by verb and result (from its log file).', labelNames: ['verb', 'result'], registers });
    this.cniDuration = new Histogram({ name: 'warren_cni_call_duration_seconds', help: 'Duration of CNI plugin calls (from its log file).', labelNames: ['verb'], buckets: CNI_BUCKETS, registers });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  cniCall(c: CniCall): void {
    this.cniCalls.inc({ verb: c.verb, result: c.result });
    if (c.seconds !== undefined) this.cniDuration.observe({ verb: c.verb }, c.seconds);
  }

  /** The exposition text, peer and relay values read now. */
  async render(): Promise<string> {
    const s = sampleOf(await this.status(), this.now());
    for (const [path, n] of Object.entries(s.paths)) this.peers.set({ path }, n);
    // Peers that left disappear; counters that mirror WireGuard's own are set, not added to.
    for (const m of [this.handshakeAge, this.peerReceived, this.peerSent]) m.reset();
    for (const p of s.peers) {
      if (p.handshakeAgeSeconds !== undefined) this.handshakeAge.set({ peer: p.peer }, p.handshakeAgeSeconds);
      this.peerReceived.inc({ peer: p.peer }, p.receivedBytes);
      this.peerSent.inc({ peer: p.peer }, p.sentBytes);
    }
    this.relayAllocated.set(s.relayAllocated ? 1 : 0);
    for (const transport of RELAY_TRANSPORTS) this.relayTransport.set({ transport }, s.relayTransport === transport ? 1 : 0);
    for (const [m, v] of [[this.relayReceived, s.relay.receivedBytes], [this.relaySent, s.relay.sentBytes]] as const) {
      m.reset();
      m.inc(v);
    }
    return this.registry.metrics();
  }
}
