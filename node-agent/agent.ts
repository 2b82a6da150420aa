// warren-agent's run loop: every part is built and tested on its own (wireguard/,
// overlay/, traversal/, nat/, relay/, signal/, engine/); this file starts them in order
// and wires what one learns into the next. Startup order matters:
//   WireGuard interface (adopted if it exists: a restart drops no traffic)
//   -> the running agent, if any, asked to let go (handover.ts: the DaemonSet surges)
//   -> port share -> probe socket -> TURN relay (optional; the previous agent's resumed)
//   -> STUN (public WGPORT) -> punch TTL -> own record published -> peers watched -> paths chosen
//   -> WireGuard reconciled whenever peers or paths change, and every reconcileSeconds.
// Beside them: the Node publisher (kube/: the Node object says whether the overlay is up),
// opened first so that a missing node.json is on the Node before the agent exits, and
// the metrics (metrics/), served on the host-overlay address once the interface has it.
import { readFileSync } from 'node:fs';
import { readSecretFile } from '../lib/secret-file.js';
import { authOffWarning, etcdAuthEnabled } from '../lib/etcd/auth-status.js';
import type { Socket } from 'node:dgram';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../lib/errors.js';
import { EtcdStore } from '../lib/etcd/store.js';
import { ipJson, type IpAddrLink } from '../lib/ip.js';
import { MtuError, uplinkMtu } from '../lib/mtu.js';
import { execRunner, type Runner } from '../lib/runner.js';
import { configEndpoint, type AgentConfig } from './config.js';
import { Checks } from './engine/checks.js';
import { Engine } from './engine/engine.js';
import { hopsTo, punchTtlFor } from './engine/hops.js';
import { openNodeApi } from './kube/api.js';
import { desiredNode, nodeFileCondition } from './kube/desired.js';
import type { DesiredNode } from './kube/node-plan.js';
import { NodePublisher } from './kube/publisher.js';
import { localCandidates } from './local-candidates.js';
import { MetricsService } from './metrics/service.js';
import { formatEndpoint, type Endpoint } from './nat/stun-address.js';
import { TurnClient, type TurnClientOptions } from './nat/turn-client.js';
import { bindUdp, udpPort } from './nat/udp.js';
import { openTurnPort, type TurnPort } from './relay/turn-port.js';
import { transportOrder, udpProbeDue, type RelayTransport } from './relay/turn-transports.js';
import { StunTimeoutError, TurnTransportError } from './nat/errors.js';
import { stunBinding } from './nat/stun-client.js';
import { peerPath } from './paths.js';
import { NodeFileError, readNodeFile, type NodeFile } from '../lib/node-file.js';
import { mtuFor, type OverlayPeer } from './overlay/plan.js';
import { reconcileOverlay } from './overlay/reconcile.js';
import { readRelayedPeers, writeRelayedPeers } from './engine/relayed-peers.js';
import { RelayProxy, type RelayLinkPort, type RelayTraffic } from './relay/relay-proxy.js';
import { readRelayState, relayStateFits, writeRelayState, type RelayState } from './relay/relay-state.js';
import { pickCredential, rotationStep, turnLogin, type TurnLogin } from './relay/turn-login.js';
import { KeyFollower } from '../lib/etcd/key-follower.js';
import { keyLayout } from '../lib/etcd/keys.js';
import { parseTurnCredential, rotationAt, type TurnCredential } from '../lib/turn-credential.js';
import { handoverSocket, requestHandover, serveHandover } from './handover.js';
import { openGateway } from './gateway/open-gateway.js';
import type { GatewayRole } from './gateway/gateway-role.js';
import { agentKeys } from './signal/keys.js';
import { Publisher } from './signal/publisher.js';
import type { Candidate, NatMapping, NodeRecord, NodeRecordContent } from './signal/record.js';
import { PeerWatcher, type PeerSet } from './signal/watcher.js';
import { serveStatus, type AgentStatus } from './status.js';
import { enablePortShare } from './traversal/port-share.js';
import { Prober } from './traversal/prober.js';
import { openBackend, type WireguardBackend } from './wireguard/backend.js';
import { ensureNodeKey, type NodeKey } from './wireguard/keys.js';
import { readStatus as readWgStatus } from './wireguard/status.js';
import { readUnderlay, UnderlayWatcher } from './underlay/watcher.js';
import { LIBIPSEC_DEVICE } from './gateway/hub-tunnels.js';
import type { UnderlayChange } from './underlay/view.js';
import { dropEtcdConnections } from './underlay/connections.js';

/** WireGuard keepalive toward peers behind NATs: keeps their mappings (and ours) open. */
const KEEPALIVE_SECONDS = 25;
/** Our public mapping is asked again this often: a NAT that rebinds shows up here at the latest. */
const STUN_REFRESH_MS = 30_000;
/**
 * A direct peer missing its keepalive check asks for the mapping at once (engine knobs:
 * DIRECT_SUSPECT_MS); every peer does when the node's own NAT rebound, so one ask per this
 * long serves them all.
 */
const SUSPECT_REFRESH_MIN_MS = 2000;
/**
 * How often the agent asks the backend whether something still serves the device (for
 * wireguard-go one unix-socket connect). A dead daemon (crashed, killed) is started again
 * by the next reconcile: this brings that reconcile forward from up to reconcileSeconds.
 */
const DAEMON_CHECK_MS = 1000;
/**
 * The TURN allocation is checked this often (an authenticated Refresh, one round trip). A
 * lost one (the server restarted, our NAT rebound the allocation's port or our router
 * rebooted: the server answers from no allocation for the new 5-tuple at once; TURN was
 * down at start) is replaced and republished; without this, relayed peers stay cut off
 * until the next scheduled refresh finds out, minutes later. One request per node (not
 * per peer) every 2 s: the detection of a rebooted router for relayed peers, which no
 * local event announces (issue 11: traffic back within 5 s; it was 15 s).
 */
const TURN_CHECK_MS = 2000;
/** Without an allocation (TURN unreachable, refused), the timer tries a new one this often: not every check, which would log each failure. */
const TURN_RETRY_MS = 15_000;
/**
 * A relay over TCP or TLS asks this often whether UDP answers again (one Binding request,
 * given up after 750 ms): a site that opens UDP is back on it within about 3 s.
 */
const UDP_PROBE_MS = 2000;
const UDP_PROBE_RETRANSMIT = { rtoMs: 250, maxTransmissions: 2, lastWaitMultiplier: 2 };
/** When UDP opens, direct checks get this long before the TCP or TLS relay is replaced (under load they took 1-2 s). */
const DIRECT_BEFORE_UDP_RELAY_MS = 3000;
/**
 * STUN and TURN requests of the agent give up after about 2.75 s, not RFC 8489's 39.5 s:
 * a server that does not answer must not hold the node's start (its peers wait for its
 * record); the mapping is asked again every STUN_REFRESH_MS anyway.
 */
const AGENT_RETRANSMIT = { rtoMs: 250, maxTransmissions: 4, lastWaitMultiplier: 4 };
/**
 * How long a new agent waits for the running one to let go. Stopping takes a few hundred
 * ms (the reconcile under way, etcd calls); past this the old one is taken as hung and the
 * new one starts as after a crash.
 */
const HANDOVER_TIMEOUT_MS = 10_000;

export type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const jsonLog: Log = (level, msg, fields = {}) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
};


export class Agent {
  private node!: NodeFile;
  private key!: NodeKey;
  private backend!: WireguardBackend;
  private prober!: Prober;
  private checks!: Checks;
  private engine!: Engine;
  private store!: EtcdStore;
  private publisher!: Publisher;
  private watcher!: PeerWatcher;
  /** The way to the TURN server the allocation was made over (UDP, TCP or TLS). */
  private turnPort: TurnPort | undefined;
  /** The transport that worked last: tried first for the next allocation (turn-transports.ts). */
  private lastRelayTransport: RelayTransport | undefined;
  private lastUdpProbeAt = 0;
  private movingToUdp = false;
  private turn: TurnClient | undefined;
  private relay: RelayProxy | undefined;
  /** turn.issued: the newest credential etcd holds for this node, the one the allocation was made with, and the previous agent's. */
  private issuedCredential: TurnCredential | undefined;
  private turnLogin: TurnLogin | undefined;
  private savedCredential: TurnCredential | undefined;
  private credentialFollower: KeyFollower | undefined;
  private rotationTimer: NodeJS.Timeout | undefined;
  private credentialWaitLogged = false;
  /** The relay links' ports, kept while no allocation exists (no credential yet): the first allocation reopens them. */
  private idleRelayPorts: RelayLinkPort[] = [];
  private readonly relayTraffic: RelayTraffic = { sentBytes: 0, receivedBytes: 0 };
  private peers: PeerSet = new Map();
  /** Until the watcher's first snapshot, the peer set is unknown, not empty: reconciling
   *  then would remove every peer of an adopted interface and drop its traffic. */
  private peersKnown = false;
  private mapping: NatMapping = 'unknown';
  private reflexive: Endpoint | undefined;
  /** The mapping refresh under way (one at a time) and when the last one began. */
  private refreshing: Promise<void> | undefined;
  /** A refresh was asked for while one ran that began before the reason for it (the underlay moved): run once more. */
  private refreshAgain = false;
  private lastRefreshAt = 0;
  /** Netlink: the node's addresses and default routes (underlay/). */
  private underlay: UnderlayWatcher | undefined;
  private stopping = false;
  /** The daemon check under way, one at a time. */
  private daemonCheck: Promise<void> | undefined;
  private daemonDown = false;
  /** The relay check under way, one at a time. */
  private relayCheck: Promise<void> | undefined;
  /** When the timer last tried to allocate while the node had no allocation (TURN_RETRY_MS). */
  private lastRelayRetryAt = 0;
  private punchTtl: number | undefined;
  private mtu = 0;
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  /** The last reconcile's outcome, for the Node's NetworkUnavailable. */
  private overlay: 'pending' | 'configured' | { error: string } = 'pending';
  private statusServer: import('node:net').Server | undefined;
  private handoverServer: import('node:net').Server | undefined;
  private stopped: Promise<void> | undefined;
  private kube: NodePublisher | undefined;
  private metrics: MetricsService | undefined;
  private gateway: GatewayRole | undefined;

  constructor(private readonly config: AgentConfig, private readonly log: Log = jsonLog, private readonly runner: Runner = execRunner) {}

  async start(): Promise<void> {
    const c = this.config;
    this.kube = await this.openKube();
    this.node = await this.readNodeFile();
    this.key = await ensureNodeKey(join(c.stateDir, 'keys', 'wireguard.key'));
    this.mtu = c.mtu ?? (await this.underlayMtu());
    this.backend = await openBackend({ ifname: c.interface, runner: this.runner, logPath: join(c.stateDir, `${c.interface}-wireguard-go.log`) });
    const ensured = await this.backend.ensureInterface();
    this.log('info', 'WireGuard interface', { interface: c.interface, backend: this.backend.kind, action: ensured });
    // As late as possible: the running agent keeps relaying while this one prepares.
    const handover = await requestHandover(handoverSocket(c.stateDir), HANDOVER_TIMEOUT_MS);
    if (handover !== 'no agent') this.log(handover === 'released' ? 'info' : 'warn', 'the running agent was asked to let go', { outcome: handover });
    // Routes and peers are restored now from nothing but the interface itself: traffic of an
    // adopted interface keeps flowing while the rest starts.
    await enablePortShare(this.runner, { wgPort: c.listenPort, probePort: c.probePort });
    this.prober = await Prober.open({ wgPort: c.listenPort, probePort: c.probePort, stun: { retransmit: AGENT_RETRANSMIT } });
    // Answering peers' checks from the first moment: a peer that started earlier is
    // already checking us.
    this.checks = new Checks({ port: this.prober.port, selfNode: c.nodeName });
    // The relay first: a resumed allocation carries relayed peers again at once, while STUN
    // (a few round trips, seconds when a server does not answer) is still to come.
    const saved = readRelayState(c.stateDir);
    this.savedCredential = saved?.credential;
    // A site that blocks UDP: the next agent goes straight to what worked, not through UDP's timeout.
    this.lastRelayTransport = saved?.transport;
    await this.startRelay(saved);
    await this.learnMapping();

    this.engine = new Engine({
      selfNode: c.nodeName,
      prober: this.prober,
      checks: this.checks,
      relay: this.relay,
      punchTtl: this.punchTtl ?? 2,
      onChange: () => this.requestReconcile(),
      onPath: (p) => {
        // The engine's clock is performance.now(): its `since`, on the wall clock.
        const since = p.since === undefined ? undefined : new Date(Date.now() - (performance.now() - p.since)).toISOString();
        this.log('info', 'peer path', { peer: p.node, ...peerPath(p, this.turnPort?.transport), endpoint: p.endpoint, since });
      },
      onError: (err) => this.log('warn', 'path engine', { error: errorMessage(err) }),
      relayedBefore: readRelayedPeers(c.stateDir),
      onSuspect: (peer) => {
        if (Date.now() - this.lastRefreshAt < SUSPECT_REFRESH_MIN_MS) return;
        this.log('info', 'a direct peer missed its keepalive check: asking STUN for our mapping', { peer });
        void this.refreshMapping();
      },
    });

    this.store = new EtcdStore(c.etcd);
    // Loud, once: without etcd authentication any client can rewrite every record (README, Security).
    const store = this.store;
    void etcdAuthEnabled(store).then((on) => {
      if (!on) this.log('warn', authOffWarning(store.endpoints));
    }, () => undefined);
    const keys = agentKeys(c.etcdPrefix);
    this.publisher = new Publisher({ store: this.store, keys, record: await this.record(), onError: (err) => this.log('warn', 'publishing', { error: errorMessage(err) }) });
    this.watcher = new PeerWatcher({
      store: this.store,
      keys,
      self: c.nodeName,
      onPeers: (peers) => {
        this.peers = peers;
        this.peersKnown = true;
        this.engine.setPeers(peers);
        this.requestReconcile();
      },
      onInvalid: (err) => this.log('warn', 'peer record refused', { error: err.message }),
      onError: (err) => this.log('warn', 'watching peers', { error: errorMessage(err) }),
    });
    this.publisher.start();
    this.watcher.start();
    if (c.turn?.issued) {
      this.credentialFollower = new KeyFollower({
        store: this.store,
        key: keyLayout(c.etcdPrefix).turnCredential(c.nodeName),
        onValue: (text) => this.takeCredential(text),
        onError: (message) => this.log('warn', 'reading this node\'s TURN credential', { error: message }),
      });
      this.credentialFollower.start();
    }
    if (c.gateway) {
      // Every node follows the election: the overlay's ranges go to whichever node is active.
      this.gateway = openGateway({ config: c, store: this.store, runner: this.runner, log: this.log, onActiveChange: () => this.requestReconcile() });
      this.gateway.start();
    }
    this.timers.push(setInterval(() => this.requestReconcile(), c.reconcileSeconds * 1000));
    if (c.turn) this.timers.push(setInterval(() => void this.checkRelay(true), TURN_CHECK_MS));
    this.timers.push(setInterval(() => void this.checkDaemon(), DAEMON_CHECK_MS));
    if (c.stunServers.length) this.timers.push(setInterval(() => void this.refreshMapping(), STUN_REFRESH_MS));
    await this.watchUnderlay();
    this.statusServer = await serveStatus(c.statusSocket, () => this.status());
    this.handoverServer = await serveHandover(handoverSocket(c.stateDir), () => this.retire());
    this.kube?.start();
    if (c.metrics) {
      this.metrics = new MetricsService(c, () => this.status(), this.log);
      this.metrics.start();
    }
    this.log('info', 'agent started', { node: c.nodeName, hostAddress: this.node.hostAddress, podSubnet: this.node.podSubnet, reflexive: this.reflexive && formatEndpoint(this.reflexive), mapping: this.mapping, relay: this.relay && this.turn && formatEndpoint(this.turn.relayed) });
  }

  /** Leaves the interface, its peers, routes and TURN allocation in place: the next agent adopts them. Once, however often called. */
  stop(): Promise<void> {
    this.stopped ??= this.stopOnce();
    return this.stopped;
  }

  /** Asked by the next agent (handover.ts): stop, and idle until this process is told to exit. */
  private async retire(): Promise<void> {
    this.log('info', 'a new agent takes over: stopping, and waiting to be stopped');
    await this.stop();
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.rotationTimer);
    this.credentialFollower?.stop();
    await this.underlay?.stop();
    // A refresh or relay replacement under way may still republish: let it, before the publisher stops.
    await this.refreshing;
    await this.relayCheck;
    this.statusServer?.close();
    this.handoverServer?.close();
    this.kube?.stop();
    await this.metrics?.stop();
    // Resigns at once if active: a standby (or this node's next agent) takes over without waiting for the lease.
    await this.gateway?.stop();
    await Promise.allSettled([this.watcher?.stop(), this.publisher?.stop()]);
    this.engine?.stop();
    await this.reconciling;
    this.checks?.close();
    // The allocation is kept, not deallocated: the next agent resumes it (relay-state.ts).
    this.saveRelay(this.turn?.detach());
    this.relay?.close();
    this.turnPort?.close();
    await this.prober?.close();
    this.store?.close();
  }

  private async openKube(): Promise<NodePublisher | undefined> {
    const k = this.config.kubernetes;
    if (!k.enabled) return undefined;
    const api = await openNodeApi(k);
    this.log('info', 'keeping this node\'s Node object true', { node: this.config.nodeName, server: api.server });
    return new NodePublisher({ api, node: this.config.nodeName, desired: (now) => this.desiredNode(now), log: this.log });
  }

  /** Without node.json the agent cannot run: it says so on the Node, then stops. */
  private async readNodeFile(): Promise<NodeFile> {
    try {
      return readNodeFile(this.config.stateDir, this.config.nodeName);
    } catch (err) {
      if (err instanceof NodeFileError && this.kube) {
        const missing = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
        await this.kube.publishOnce({ condition: nodeFileCondition(err.message, missing), annotations: {} });
      }
      throw err;
    }
  }

  private desiredNode(now: Date): DesiredNode {
    const published = this.publisher.status();
    return desiredNode({
      interface: this.config.interface,
      backend: this.backend.kind,
      hostAddress: this.node.hostAddress,
      podSubnet: this.node.podSubnet,
      publicKey: this.key.publicKey,
      daemonDown: this.daemonDown,
      overlay: this.overlay,
      record: { published: published.published, connection: published.connection },
      paths: [...this.peerPaths().values()].map((p) => p.path),
    }, now, { publishPodCIDR: this.config.kubernetes.publishPodCIDR });
  }

  /** Each peer's path (engine phase, none with why), "unknown" for one the engine has not seen yet. */
  private peerPaths(): Map<string, { path: string; reason?: string }> {
    const engine = new Map(this.engine.status().map((s) => [s.node, s]));
    return new Map([...this.peers.values()].map((r) => [r.node, peerPath(engine.get(r.node), this.turnPort?.transport)]));
  }

  private async underlayMtu(): Promise<number> {
    // No default route (yet): assume Ethernet's 1500.
    const mtu = await uplinkMtu(this.runner).then((u) => u.mtu, (err: unknown) => {
      if (!(err instanceof MtuError)) throw err;
      return 1500;
    });
    // The pods' MTU (configgen: uplink - 80) must fit: never below it.
    return Math.max(mtuFor(mtu, 4), this.node.mtu);
  }

  private stunServers(): Endpoint[] {
    return this.config.stunServers.map(configEndpoint);
  }

  private async learnMapping(): Promise<void> {
    const servers = this.stunServers();
    if (servers.length === 0) return;
    try {
      const m = await this.prober.reflexiveOfWgPort(servers);
      this.reflexive = m.reflexive;
      this.mapping = m.behavior === undefined ? 'unknown' : m.behavior === 'endpoint-independent' ? 'endpoint-independent' : 'endpoint-dependent';
      for (const f of m.failed) this.log('warn', 'STUN server did not answer', { field: 'stunServers', server: formatEndpoint(f.server), error: errorMessage(f.error) });
      // A node whose public address is its own has no NAT: nothing to punch (engine.ts).
      const links = await ipJson<IpAddrLink[]>(this.runner, ['address', 'show']);
      const own = links.some((l) => (l.addr_info ?? []).some((a) => a.local === m.reflexive.address));
      this.punchTtl ??= own ? 0 : punchTtlFor(await hopsTo(this.prober, servers[0]!));
    } catch (err) {
      // No STUN answer: the node still works with its local candidates and the relay.
      this.log('warn', 'no STUN server answered: no public candidate', { field: 'stunServers', value: this.config.stunServers, error: errorMessage(err) });
    }
  }

  /**
   * The agent's own wireguard-go or an adopted one: reconcile revives either. Once per
   * death: if starting it fails, the periodic reconcile keeps trying (and logging why).
   */
  private checkDaemon(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.daemonCheck ??= this.superviseDaemon().finally(() => (this.daemonCheck = undefined));
    return this.daemonCheck;
  }

  private async superviseDaemon(): Promise<void> {
    if (await this.backend.serving()) {
      if (this.daemonDown) this.kube?.poke();
      this.daemonDown = false;
      return;
    }
    if (this.daemonDown) return;
    this.daemonDown = true;
    this.kube?.poke();
    this.log('warn', `${this.backend.kind} does not answer: starting it again`, { interface: this.config.interface });
    this.requestReconcile();
  }

  /** Keeps the node's relay: a TURN allocation that no longer answers its Refresh is replaced. */
  private checkRelay(timer = false): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (timer && udpProbeDue(this.turnPort?.transport, this.lastUdpProbeAt, Date.now(), UDP_PROBE_MS)) {
      this.lastUdpProbeAt = Date.now();
      void this.probeUdp().catch((err: unknown) => this.log('warn', 'probing UDP to the TURN server', { error: errorMessage(err) }));
    }
    if (timer && !this.turn) {
      if (Date.now() - this.lastRelayRetryAt < TURN_RETRY_MS) return Promise.resolve();
      this.lastRelayRetryAt = Date.now();
    }
    this.relayCheck ??= this.keepRelay().finally(() => (this.relayCheck = undefined));
    return this.relayCheck;
  }

  private async keepRelay(): Promise<void> {
    try {
      if (this.turn) {
        try {
          await this.turn.refresh();
          return;
        } catch (err) {
          this.log('warn', 'TURN allocation lost: allocating a new one', { field: 'turn.server', value: this.config.turn?.server, error: errorMessage(err) });
        }
      }
      await this.replaceRelay();
    } catch (err) {
      this.log('warn', 'replacing the TURN allocation', { error: errorMessage(err) });
    }
  }

  /**
   * Make before break: the old relay keeps carrying traffic while the new allocation is made
   * (one round trip, or seconds when a transport gets no answer), and hands its links'
   * loopback ports (WireGuard's endpoints for relayed peers) to the new relay only then.
   */
  private async replaceRelay(): Promise<void> {
    const [oldRelay, oldTurn, oldPort] = [this.relay, this.turn, this.turnPort];
    this.relay = undefined;
    this.turn = undefined;
    this.turnPort = undefined;
    this.turnLogin = undefined;
    let retired = false;
    const retire = (): RelayLinkPort[] => {
      retired = true;
      const ports = oldRelay?.ports() ?? this.idleRelayPorts;
      oldRelay?.close();
      // Deallocate politely if the old allocation still exists; nobody waits for it.
      if (oldTurn) void oldTurn.close().catch(() => undefined).finally(() => oldPort?.close());
      else oldPort?.close();
      return ports;
    };
    await this.startRelay(undefined, oldRelay?.ports() ?? this.idleRelayPorts, retire);
    if (!retired) this.idleRelayPorts = retire();
    if (this.stopping) return;
    // Relayed peers open links through the new allocation at once; peers learn its address from the record.
    this.engine.setRelay(this.relay);
    // Lingering links stayed with the old relay (ports()): WireGuard may have roamed to one.
    this.requestReconcile();
    this.publisher.update(await this.record());
    const turn = this.turn as TurnClient | undefined; // set by startRelay (narrowed to undefined above)
    if (turn) this.log('info', 'new TURN allocation', { relay: formatEndpoint(turn.relayed) });
  }

  /**
   * A new public endpoint (NAT rebinding) or a new mapping behaviour (the NAT was changed) is
   * republished: peers choose their paths from both. `again`: the one under way began
   * before what asks for this one (the underlay moved): it runs once more after it.
   */
  private refreshMapping(again = false): Promise<void> {
    if (!this.config.stunServers.length || this.stopping) return Promise.resolve();
    if (this.refreshing) {
      if (again) this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        this.lastRefreshAt = Date.now();
        try {
          await this.compareMapping();
        } catch (err) {
          this.log('warn', 'refreshing the public mapping', { error: errorMessage(err) });
        }
      } while (this.refreshAgain && !this.stopping);
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async compareMapping(): Promise<void> {
    const before = { reflexive: this.reflexive && formatEndpoint(this.reflexive), mapping: this.mapping };
    await this.learnMapping();
    const after = { reflexive: this.reflexive && formatEndpoint(this.reflexive), mapping: this.mapping };
    if (before.reflexive !== after.reflexive || before.mapping !== after.mapping) {
      this.log('info', 'public endpoint or NAT mapping changed', { before, after });
      // Checks to every peer first, then the record: our NAT maps toward a direct peer
      // before the peer, seeing the record, checks us at once (path.ts, recheck).
      this.engine.retryDirectNow();
      this.publisher.update(await this.record());
    }
  }

  /**
   * Follows the node's addresses and default routes (netlink, underlay/): when they move
   * (a new address on the uplink, the default route through another gateway, the link
   * down or up), the public mapping is asked at once instead of at the next refresh or a
   * peer's missed check, the record republished (the local candidates changed too), the
   * direct paths checked now and the TURN allocation checked: its 5-tuple may be broken
   * (its socket's address gone, its mapping on a NAT no longer used), and a Refresh that
   * fails replaces it. The monitor is optional: without it the timers still find out.
   */
  private async watchUnderlay(): Promise<void> {
    this.underlay = new UnderlayWatcher({
      read: readUnderlay(this.runner, this.ownAddresses()),
      onChange: (change) => void this.underlayMoved(change),
      onError: (err) => this.log('warn', 'watching the underlay (ip monitor)', { error: errorMessage(err) }),
    });
    try {
      await this.underlay.start();
    } catch (err) {
      this.underlay = undefined;
      this.log('warn', 'cannot watch the underlay: address and route changes are noticed by the timers only', { error: errorMessage(err) });
    }
  }

  private async underlayMoved(change: UnderlayChange): Promise<void> {
    if (this.stopping) return;
    this.log('info', 'underlay changed: asking STUN for our mapping, republishing, checking paths and the relay', { added: change.added, removed: change.removed });
    // Something went (an address, a route, a carrier): the etcd connection may hang on it.
    if (change.removed.length) {
      await dropEtcdConnections(this.runner, this.store.endpoints).then((skipped) => {
        if (skipped.length) this.log('info', 'etcd endpoints named by host name: their connections are left to gRPC\'s keepalive', { endpoints: skipped });
      }, (err: unknown) => this.log('warn', 'closing the etcd connections (ss -K)', { error: errorMessage(err) }));
    }
    const relay = this.config.turn ? this.checkRelay() : Promise.resolve();
    await this.refreshMapping(true);
    if (this.stopping) return;
    this.engine.retryDirectNow();
    this.publisher.update(await this.record());
    await relay;
  }

  /**
   * The allocation the previous agent left (`saved`, read from the state dir at start) is
   * resumed on its port when the server still has it; else a new one is made. Either way
   * the relay links reopen on the loopback ports WireGuard already has as endpoints.
   */
  private async startRelay(saved: RelayState | undefined, ports = saved?.links ?? this.idleRelayPorts, retire?: () => RelayLinkPort[]): Promise<void> {
    const t = this.config.turn;
    if (!t) return;
    try {
      const server = configEndpoint(t.server);
      const now = new Date();
      const resumable = saved && relayStateFits(saved, server, t.issued ? { issued: true, now } : { issued: false, username: t.username! });
      const passwordOf = () => readSecretFile('turn.passwordFile', t.passwordFile!).toString('utf8').trim();
      const login = turnLogin(t, passwordOf, pickCredential([this.issuedCredential, this.savedCredential], now));
      const resumeLogin = resumable && t.issued ? turnLogin(t, passwordOf, saved.credential) : login;
      if (!resumeLogin) {
        this.idleRelayPorts = ports;
        if (!this.credentialWaitLogged) {
          this.credentialWaitLogged = true;
          this.log('info', 'no TURN credential issued to this node yet: no relay until warren-configgen admin turn-issuer writes one',
            { key: keyLayout(this.config.etcdPrefix).turnCredential(this.config.nodeName) });
        }
        return;
      }
      const options = { server, retransmit: AGENT_RETRANSMIT };
      const resumed = resumable ? await this.resumeTurn(saved, { ...options, username: resumeLogin.username, password: resumeLogin.password }) : undefined;
      if (resumed) this.turnLogin = resumeLogin;
      else {
        if (!login) throw new Error('the previous agent\'s allocation is gone and no TURN credential lasts long enough for a new one');
        await this.allocateTurn({ ...options, username: login.username, password: login.password });
        this.turnLogin = login;
      }
      this.idleRelayPorts = [];
      this.credentialWaitLogged = false;
      this.scheduleRotation();
      const turn = this.turn!;
      turn.onError((err) => {
        this.log('warn', 'TURN refresh failed', { error: errorMessage(err) });
        void this.checkRelay();
      });
      this.relay = new RelayProxy({
        relay: turn, traffic: this.relayTraffic, wgPort: this.config.listenPort, ports: retire ? retire() : ports,
        onError: (err) => this.log('warn', 'relay', { error: errorMessage(err) }),
        onLinks: () => this.saveRelay(),
        onLinkRetiring: () => this.requestReconcile(),
      });
      this.saveRelay();
      await this.relay.restore();
    } catch (err) {
      this.turnPort?.close();
      this.turnPort = undefined;
      this.turn = undefined;
      this.turnLogin = undefined;
      this.idleRelayPorts = ports;
      this.log('warn', 'no TURN relay: peers that cannot be reached directly will wait', { field: 'turn.server', value: t.server, error: errorMessage(err) });
    }
  }

  /** turn.issued: a credential written for this node (or its deletion). A new one starts the relay, or moves it when the one in use is due. */
  private takeCredential(text: string | undefined): void {
    if (text === undefined) return; // deleted: the node was removed, or the issuer rewrites it; the one in use lasts until its expiry
    const c = parseTurnCredential(text, this.config.nodeName);
    if ('problem' in c) {
      this.log('warn', 'TURN credential refused', { key: keyLayout(this.config.etcdPrefix).turnCredential(this.config.nodeName), problem: c.problem });
      return;
    }
    if (this.issuedCredential?.username === c.username) return;
    this.issuedCredential = c;
    this.log('info', 'TURN credential issued', { username: c.username, expiresAt: c.expiresAt.toISOString() });
    if (!this.turn) void this.checkRelay();
    else this.rotateIfDue();
  }

  private scheduleRotation(): void {
    clearTimeout(this.rotationTimer);
    const inUse = this.turnLogin?.credential;
    if (!inUse || this.stopping) return;
    this.rotationTimer = setTimeout(() => this.rotateIfDue(), Math.max(0, rotationAt(inUse).getTime() - Date.now()));
  }

  /** Moves the relay to a new allocation under the newest credential once the one in use is due. */
  private rotateIfDue(): void {
    const inUse = this.turnLogin?.credential;
    if (!inUse || this.stopping) return;
    const step = rotationStep(inUse, this.issuedCredential, new Date());
    if (step === 'no newer credential') {
      this.log('warn', 'the TURN credential in use expires soon and no newer one is issued: is warren-configgen admin turn-issuer running?',
        { expiresAt: inUse.expiresAt.toISOString() });
    }
    if (step !== 'rotate') return;
    this.relayCheck ??= (async () => {
      this.log('info', 'moving the relay to a new TURN allocation: its credential expires soon', { expiresAt: inUse.expiresAt.toISOString() });
      try {
        await this.replaceRelay();
      } catch (err) {
        this.log('warn', 'replacing the TURN allocation', { error: errorMessage(err) });
      }
    })().finally(() => (this.relayCheck = undefined));
  }

  /**
   * A new allocation over the first transport that answers (relay/turn-transports.ts): UDP,
   * TCP, TLS, the one that worked last first. Only a server out of reach moves on to the
   * next; a refusal (a wrong credential, a quota) would be the same over every transport.
   */
  private async allocateTurn(options: Omit<TurnClientOptions, 'port' | 'server'>): Promise<void> {
    const t = this.config.turn!;
    const failed: string[] = [];
    for (const target of transportOrder(t, this.lastRelayTransport)) {
      let port: TurnPort | undefined;
      try {
        port = await openTurnPort(target, t.tls);
        this.turn = await TurnClient.allocate({ ...options, server: target.server, port: port.port });
      } catch (err) {
        port?.close();
        if (!(err instanceof StunTimeoutError || err instanceof TurnTransportError)) throw err;
        failed.push(`${target.transport}: ${errorMessage(err)}`);
        continue;
      }
      const opened = port;
      this.turnPort = opened;
      this.lastRelayTransport = target.transport;
      opened.onEnd((why) => {
        if (this.turnPort !== opened || this.stopping) return;
        this.log('warn', `the TURN connection (${target.transport}) ended: allocating a new one`, { server: formatEndpoint(target.server), why });
        void this.checkRelay();
      });
      if (failed.length) this.log('info', `TURN relay over ${target.transport}`, { server: formatEndpoint(target.server), failed });
      return;
    }
    throw new Error(`the TURN server answers over no transport (${failed.join('; ')})`);
  }

  /**
   * A relay over TCP or TLS asks whether UDP reaches the TURN server again (one Binding
   * request from a socket of its own); when it does, the node learns its mapping (direct
   * paths become possible) and moves the relay to UDP.
   */
  private async probeUdp(): Promise<void> {
    if (this.movingToUdp) return;
    this.movingToUdp = true;
    try {
      await this.moveToUdpIfOpen();
    } finally {
      this.movingToUdp = false;
    }
  }

  private async moveToUdpIfOpen(): Promise<void> {
    const server = configEndpoint(this.config.turn!.server);
    const socket = await bindUdp(0);
    try {
      await stunBinding(udpPort(socket), server, { retransmit: UDP_PROBE_RETRANSMIT });
    } catch {
      return; // still blocked
    } finally {
      socket.close();
    }
    if (this.stopping || !this.turnPort || this.turnPort.transport === 'udp') return;
    this.log('info', 'UDP reaches the TURN server again: asking STUN for our mapping, moving the relay to UDP', { from: this.turnPort.transport });
    this.lastRelayTransport = 'udp';
    await this.refreshMapping(true);
    this.engine.retryDirectNow();
    // Peers that can go direct do so while the relay still carries them; the rest move with it.
    await new Promise((r) => setTimeout(r, DIRECT_BEFORE_UDP_RELAY_MS));
    if (this.stopping || (this.turnPort as TurnPort | undefined)?.transport === 'udp') return;
    this.relayCheck ??= this.replaceRelay()
      .catch((err: unknown) => this.log('warn', 'replacing the TURN allocation', { error: errorMessage(err) }))
      .finally(() => (this.relayCheck = undefined));
  }

  /** The previous agent's allocation, on its port; undefined (logged) when it is gone or the port is taken. */
  private async resumeTurn(saved: RelayState, options: Omit<Parameters<typeof TurnClient.allocate>[0], 'port'>): Promise<TurnClient | undefined> {
    let port: TurnPort | undefined;
    try {
      port = await openTurnPort({ transport: 'udp', server: options.server }, undefined, saved.localPort);
      this.turn = await TurnClient.resume({ ...options, port: port.port }, saved.turn);
      this.turnPort = port;
      this.lastRelayTransport = 'udp';
      this.log('info', 'resumed the previous agent\'s TURN allocation', { relay: formatEndpoint(saved.turn.relayed), channels: saved.turn.channels.length });
      return this.turn;
    } catch (err) {
      port?.close();
      this.log('info', 'the previous agent\'s TURN allocation cannot be resumed: allocating a new one', { relay: formatEndpoint(saved.turn.relayed), error: errorMessage(err) });
      return undefined;
    }
  }

  /** Keeps relay.json true for the next agent: the allocation, its channels, the links' ports. */
  private saveRelay(turn = this.turn?.snapshot()): void {
    const t = this.config.turn;
    const login = this.turnLogin;
    const port = this.turnPort;
    if (!t || !turn || !port || !login) return;
    try {
      writeRelayState(this.config.stateDir, {
        server: formatEndpoint(port.server), username: login.username, localPort: port.localPort, transport: port.transport, turn,
        links: this.relay?.ports() ?? [], ...(login.credential ? { credential: login.credential } : {}),
      });
    } catch (err) {
      this.log('warn', 'saving the relay for the next agent', { error: errorMessage(err) });
    }
  }

  /**
   * Addresses that are Warren's own, not the underlay's: the WireGuard interface, the host
   * and pod ranges, and on a gateway the IPsec TUN device and the SD-EWAN overlay (its OIP
   * comes and goes with every hub restart). Neither a candidate for peers nor a move.
   */
  private ownAddresses(): { skipInterfaces: string[]; exclude: string[] } {
    const g = this.config.gateway;
    return {
      skipInterfaces: [this.config.interface, ...(g ? [LIBIPSEC_DEVICE] : [])],
      exclude: [this.node.hostCIDR, this.node.podCIDR, ...(g?.overlayRanges ?? [])],
    };
  }

  private async record(): Promise<NodeRecordContent> {
    const links = await ipJson<IpAddrLink[]>(this.runner, ['address', 'show']);
    const candidates: Candidate[] = localCandidates(links, { listenPort: this.config.listenPort, ...this.ownAddresses() });
    if (this.reflexive && !candidates.some((c) => c.address === this.reflexive!.address && c.port === this.reflexive!.port)) {
      candidates.push({ kind: 'reflexive', address: this.reflexive.address, port: this.reflexive.port });
    }
    if (this.turn) candidates.push({ kind: 'relay', address: this.turn.relayed.address, port: this.turn.relayed.port });
    return {
      node: this.config.nodeName,
      publicKey: this.key.publicKey,
      hostAddress: this.node.hostAddress,
      podSubnet: this.node.podSubnet,
      listenPort: this.config.listenPort,
      candidates,
      nat: { mapping: this.mapping },
    };
  }

  /** Reconciles now, or once more after the one running: changes are never lost, never run twice at once. */
  private requestReconcile(): void {
    if (!this.peersKnown) return;
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = this.reconcile()
      .then(() => {
        this.overlay = 'configured';
        void this.metrics?.listen(this.node.hostAddress);
      }, (err: unknown) => {
        this.overlay = { error: errorMessage(err) };
        this.log('error', 'reconcile failed', { error: errorMessage(err) });
      })
      .finally(() => {
        this.kube?.poke();
        this.reconciling = undefined;
        if (this.reconcileAgain) {
          this.reconcileAgain = false;
          this.requestReconcile();
        }
      });
  }

  private async reconcile(): Promise<void> {
    const endpoints = this.engine.desiredEndpoints();
    const peers: OverlayPeer[] = [...this.peers.values()].map((r: NodeRecord) => ({
      publicKey: r.publicKey,
      hostAddress: r.hostAddress,
      podSubnet: r.podSubnet,
      endpoint: endpoints.get(r.publicKey),
      keepaliveSeconds: KEEPALIVE_SECONDS,
      routedRanges: this.gateway && r.node === this.gateway.activeNode() ? this.config.gateway!.overlayRanges : undefined,
    }));
    const result = await reconcileOverlay(this.backend, this.runner, {
      self: {
        publicKey: this.key.publicKey,
        privateKeyPath: this.key.privateKeyPath,
        hostAddress: this.node.hostAddress,
        hostCidr: this.node.hostCIDR,
        podSubnet: this.node.podSubnet,
        podCidr: this.node.podCIDR,
        listenPort: this.config.listenPort,
        mtu: this.mtu,
      },
      peers,
    });
    for (const r of result.rejected) this.log('warn', 'peer left out', { publicKey: r.publicKey, reason: r.reason });
    const relayed = this.engine.status().filter((p) => p.phase === 'relayed' && p.relayed).map((p) => p.node);
    try {
      writeRelayedPeers(this.config.stateDir, relayed);
    } catch (err) {
      this.log('warn', 'cannot keep the relayed peers for the next agent', { error: errorMessage(err) });
    }
  }

  async status(): Promise<AgentStatus> {
    await this.gateway?.refresh();
    const wg = await readWgStatus(this.runner, this.config.interface).catch(() => []);
    const byKey = new Map(wg.map((p) => [p.publicKey, p]));
    const paths = this.peerPaths();
    return {
      node: this.config.nodeName,
      interface: this.config.interface,
      backend: this.backend.kind,
      publicKey: this.key.publicKey,
      hostAddress: this.node.hostAddress,
      podSubnet: this.node.podSubnet,
      listenPort: this.config.listenPort,
      nat: { mapping: this.mapping, reflexive: this.reflexive && formatEndpoint(this.reflexive), punchTtl: this.punchTtl },
      relay: this.turn ? formatEndpoint(this.turn.relayed) : undefined,
      relayTransport: this.turn ? this.turnPort?.transport : undefined,
      relayCredentialExpires: this.turn ? this.turnLogin?.credential?.expiresAt.toISOString() : undefined,
      relayTraffic: { ...this.relayTraffic },
      etcd: { publisher: this.publisher.status().connection.state, watcher: this.watcher.status().connection.state },
      peers: [...this.peers.values()].map((r) => {
        const w = byKey.get(r.publicKey);
        return {
          node: r.node,
          hostAddress: r.hostAddress,
          ...paths.get(r.node)!,
          endpoint: w?.endpoint,
          lastHandshake: w?.latestHandshake?.toISOString(),
          rxBytes: w?.rxBytes ?? 0,
          txBytes: w?.txBytes ?? 0,
        };
      }).sort((a, b) => a.node.localeCompare(b.node)),
      kubernetes: this.kube?.status(),
      gateway: this.gateway?.status(),
    };
  }
}
