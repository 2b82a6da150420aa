// Runs inside an emulated node (NsWorker, test/helpers/natlab.ts): the traversal engine
// wired the way the agent will wire it. The probe socket (Prober) carries punches, the hop
// count, STUN and the checks; a TURN allocation on a socket of its own feeds the
// RelayProxy; the engine's desired endpoints go to WireGuard through the overlay
// reconcile on every change. The test process owns wireguard-go (wg-hosts.ts); this only
// adopts the interface.
//
// Every peer is in WireGuard from the start with its allowed IPs, as the agent configures
// it, its endpoint once the engine gives one. wireguard-go, given traffic for a peer
// without an endpoint, "sends" a handshake initiation into the void and then refuses to
// start another for 5 s (REKEY_TIMEOUT); it still answers one the other side starts. That
// is why only the node whose name sorts first gives its first endpoint at once: the other
// holds its own back (FIRST_ENDPOINT_HOLD_MS) and its WireGuard answers by roaming, so the
// pair never waits for that timeout.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../../../../lib/errors.js';
import { execRunner } from '../../../../lib/runner.js';
import { Checks, type ChecksCounters } from '../../../../node-agent/engine/checks.js';
import { Engine, type PeerStatus } from '../../../../node-agent/engine/engine.js';
import { hopsTo, punchTtlFor } from '../../../../node-agent/engine/hops.js';
import type { MappingBehavior } from '../../../../node-agent/nat/stun-client.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { TurnClient } from '../../../../node-agent/nat/turn-client.js';
import { udpPort } from '../../../../node-agent/nat/udp.js';
import { reconcileOverlay } from '../../../../node-agent/overlay/reconcile.js';
import type { OverlayInput } from '../../../../node-agent/overlay/plan.js';
import { RelayProxy, type RelayLinkStats } from '../../../../node-agent/relay/relay-proxy.js';
import type { NatMapping, NodeRecord } from '../../../../node-agent/signal/record.js';
import { Prober } from '../../../../node-agent/traversal/prober.js';
import { openBackend, type WireguardBackend } from '../../../../node-agent/wireguard/backend.js';

/** node-agent/agent.ts's persistent keepalive. */
const AGENT_KEEPALIVE_SECONDS = 25;
import type { TurnAccount } from '../../../helpers/natlab.js';

export interface StartOptions {
  node: string;
  wgPort: number;
  probePort: number;
  ifname: string;
  publicKey: string;
  privateKeyPath: string;
  overlayAddress: string;
  podSubnet: string;
  /** The host's own address on its LAN: the local candidate. */
  hostAddress: string;
  stunServers: Endpoint[];
  turn: TurnAccount;
}

export interface Started {
  record: NodeRecord;
  hops: number;
  punchTtl: number;
  behavior: MappingBehavior | undefined;
  /** How long each step took, ms. */
  ms: { hops: number; stun: number; turn: number };
}

export interface Report {
  status: (PeerStatus & { sinceMs?: number })[];
  /** Per peer public key: ms after setPeers when WireGuard was first given a (non-empty) endpoint, and which. */
  applied: Record<string, { ms: number; endpoint: string }>;
  checks: ChecksCounters;
  relay: RelayLinkStats[];
  errors: string[];
}

interface Running {
  o: StartOptions;
  prober: Prober;
  checks: Checks;
  turnSocket: Socket;
  turn: TurnClient;
  relay: RelayProxy;
  engine: Engine;
  backend: WireguardBackend;
  peers: NodeRecord[];
  setPeersAt: number;
  applied: Report['applied'];
  errors: string[];
  reconciling: boolean;
  again: boolean;
}

let r: Running | undefined;

function running(): Running {
  if (!r) throw new Error('engine not started');
  return r;
}

const natMapping = (b: MappingBehavior | undefined): NatMapping => (b === undefined ? 'unknown' : b === 'endpoint-independent' ? b : 'endpoint-dependent');

export async function start(o: StartOptions): Promise<Started> {
  if (r) throw new Error('engine already started');
  const errors: string[] = [];
  const prober = await Prober.open({ wgPort: o.wgPort, probePort: o.probePort });
  const checks = new Checks({ selfNode: o.node, port: prober.port });
  let t = performance.now();
  const hops = await hopsTo(prober, o.stunServers[0]!);
  const hopsMs = performance.now() - t;
  t = performance.now();
  const mapping = await prober.reflexiveOfWgPort(o.stunServers);
  const stunMs = performance.now() - t;
  // TURN on its own socket: ChannelData from the server carries no STUN cookie, so sent to
  // WGPORT it would reach WireGuard, not the agent.
  const turnSocket = createSocket('udp4');
  await new Promise<void>((resolve) => turnSocket.bind(0, () => resolve()));
  t = performance.now();
  const turn = await TurnClient.allocate({ port: udpPort(turnSocket), server: o.turn.server, username: o.turn.username, password: o.turn.password });
  const turnMs = performance.now() - t;
  const relay = new RelayProxy({ relay: turn, wgPort: o.wgPort, onError: (e) => errors.push(`relay: ${errorMessage(e)}`) });
  const backend = await openBackend({ ifname: o.ifname, runner: execRunner, prefer: 'wireguard-go' });
  const punchTtl = punchTtlFor(hops);
  const engine = new Engine({
    selfNode: o.node, prober, checks, relay, punchTtl,
    onChange: () => void reconcile(), onError: (e) => errors.push(`engine: ${errorMessage(e)}`),
  });
  r = { o, prober, checks, turnSocket, turn, relay, engine, backend, peers: [], setPeersAt: 0, applied: {}, errors, reconciling: false, again: false };
  const record: NodeRecord = {
    node: o.node, publicKey: o.publicKey, hostAddress: o.overlayAddress, podSubnet: o.podSubnet, listenPort: o.wgPort,
    candidates: [
      { kind: 'local', address: o.hostAddress, port: o.wgPort },
      { kind: 'reflexive', ...mapping.reflexive },
      { kind: 'relay', ...turn.relayed },
    ],
    nat: { mapping: natMapping(mapping.behavior) },
    updatedAt: new Date().toISOString(),
  };
  return { record, hops, punchTtl, behavior: mapping.behavior, ms: { hops: hopsMs, stun: stunMs, turn: turnMs } };
}

/** The peer set as the signal watcher would hand it over; returns Date.now() at the handover. */
export function setPeers(records: NodeRecord[]): number {
  const w = running();
  w.peers = records;
  w.setPeersAt = performance.now();
  w.engine.setPeers(new Map(records.map((rec) => [rec.node, rec])));
  return Date.now();
}

// One reconcile at a time; a change during one runs one more pass after it.
async function reconcile(): Promise<void> {
  const w = running();
  if (w.reconciling) {
    w.again = true;
    return;
  }
  w.reconciling = true;
  try {
    do {
      w.again = false;
      const desired = w.engine.desiredEndpoints();
      const input: OverlayInput = {
        self: {
          publicKey: w.o.publicKey, privateKeyPath: w.o.privateKeyPath, hostAddress: w.o.overlayAddress, hostCidr: '10.10.0.0/16',
          podSubnet: w.o.podSubnet, podCidr: '10.244.0.0/16', listenPort: w.o.wgPort, mtu: 1420,
        },
        // As the agent does: every peer with its allowed IPs from the start, its endpoint once
        // the engine has one (the node holding its first endpoint back answers the other's
        // handshake by roaming), and the agent's persistent keepalive, which makes WireGuard
        // start a handshake as soon as it has an endpoint.
        peers: w.peers.filter((p) => p.node !== w.o.node).map((p) => {
          const endpoint = desired.get(p.publicKey);
          return { publicKey: p.publicKey, hostAddress: p.hostAddress, podSubnet: p.podSubnet, keepaliveSeconds: AGENT_KEEPALIVE_SECONDS, ...(endpoint ? { endpoint } : {}) };
        }),
      };
      const result = await reconcileOverlay(w.backend, execRunner, input);
      if (result.rejected.length > 0) w.errors.push(`reconcile rejected ${JSON.stringify(result.rejected)}`);
      for (const [key, endpoint] of desired) if (endpoint) w.applied[key] ??= { ms: performance.now() - w.setPeersAt, endpoint };
    } while (w.again);
  } catch (err) {
    w.errors.push(`reconcile: ${errorMessage(err)}`);
  } finally {
    w.reconciling = false;
  }
}

export function report(): Report {
  const w = running();
  return {
    status: w.engine.status().map((s) => ({ ...s, ...(s.since !== undefined ? { sinceMs: s.since - w.setPeersAt } : {}) })),
    applied: w.applied,
    checks: w.checks.counters(),
    relay: w.relay.stats(),
    errors: w.errors,
  };
}

/** The hop count alone, on a probe socket of its own (the port share must be in place for it). */
export async function countHops(wgPort: number, probePort: number, server: Endpoint): Promise<number> {
  const prober = await Prober.open({ wgPort, probePort });
  try {
    return await hopsTo(prober, server);
  } finally {
    await prober.close();
  }
}

export async function stop(): Promise<void> {
  const w = r;
  r = undefined;
  if (!w) return;
  w.engine.stop();
  w.relay.close();
  w.checks.close();
  await w.turn.close().catch(() => undefined);
  w.turnSocket.close();
  await w.prober.close();
}
