// Pure path selection for one peer, ICE-like but over WireGuard's own port: punch with a
// small TTL, wait, then send connectivity checks to every direct candidate; the first
// candidate that answers becomes WireGuard's endpoint. No answer within a round: the
// relay. A relayed peer is checked again every minute and moved to direct when a check
// succeeds, without touching WireGuard until then. A direct path that stops answering
// starts over. `now` comes in, actions go out; the engine executes them.
import { formatEndpoint, parseEndpoint, type Endpoint } from '../nat/stun-address.js';
import * as K from './knobs.js';

export interface PeerCandidates {
  /** Changes whenever the peer's candidates change (a new round is needed). */
  fingerprint: string;
  /** Where the peer's WireGuard port may be reached directly (local and reflexive). */
  direct: Endpoint[];
  /** The peer's TURN relay address, if it has one. */
  relay?: Endpoint;
}

export type PathState =
  | { phase: 'punching'; fingerprint: string; since: number; punches: number; lastSentAt: number }
  | { phase: 'checking'; fingerprint: string; since: number; lastSentAt: number }
  /** `pendingSince`: when the latest keepalive check went out, while it is unanswered; `suspected`: its miss was reported. */
  | { phase: 'direct'; fingerprint: string; since: number; endpoint: string; lastOkAt: number; lastSentAt: number; pendingSince?: number; suspected?: boolean }
  /** `via`: the peer relay address WireGuard is sent to; undefined while no relay is available. */
  | { phase: 'relayed'; fingerprint: string; since: number; nextRoundAt: number; via?: string; round?: { since: number; lastSentAt: number } };

export type PathAction =
  | { kind: 'punch'; to: Endpoint[] }
  | { kind: 'check'; to: Endpoint[] }
  /** The WireGuard endpoint: a direct "ip:port", or through the relay to the peer's relay address. */
  | { kind: 'endpoint'; endpoint: string }
  /** WireGuard goes through this node's relay to the peer's relay address (the engine drops any older relay link of the peer, and the link when the peer goes direct). */
  | { kind: 'relay'; peerRelay: Endpoint }
  /** A keepalive check went unanswered: this node's own NAT may have rebound; ask STUN now. */
  | { kind: 'suspect' };

export interface PathInput {
  now: number;
  peer: PeerCandidates;
  /** The latest answered check from this peer (or a check the peer sent us: it proves the path too). */
  lastSuccess?: { endpoint: Endpoint; at: number };
  /** Whether this node has a relay to fall back to. */
  relayAvailable: boolean;
  /**
   * The peer was relayed when this agent's predecessor stopped (a restart, an upgrade):
   * its first step goes through the relay at once, with a direct round beside it, instead
   * of after a whole round of checks with no path at all.
   */
  wasRelayed?: boolean;
}

export interface PathStep {
  state: PathState;
  actions: PathAction[];
}

function succeededSince(input: PathInput, since: number): Endpoint | undefined {
  return input.lastSuccess && input.lastSuccess.at >= since ? input.lastSuccess.endpoint : undefined;
}

function begin(input: PathInput, actions: PathAction[]): PathStep {
  const { now, peer } = input;
  if (peer.direct.length === 0) return relayOrWait(input, actions);
  return {
    state: { phase: 'punching', fingerprint: peer.fingerprint, since: now, punches: 1, lastSentAt: now },
    actions: [...actions, { kind: 'punch', to: peer.direct }],
  };
}

type RelayedState = Extract<PathState, { phase: 'relayed' }>;

/** Relayed from now on; a relay action unless WireGuard already goes through `currentVia`. */
function relayOrWait(input: PathInput, actions: PathAction[], currentVia?: string): PathStep {
  const { now, peer } = input;
  const usable = input.relayAvailable && peer.relay ? peer.relay : undefined;
  const state: PathState = { phase: 'relayed', fingerprint: peer.fingerprint, since: now, nextRoundAt: now + K.DIRECT_RETRY_MS, via: usable && formatEndpoint(usable) };
  if (usable && state.via !== currentVia) actions.push({ kind: 'relay', peerRelay: usable });
  return { state, actions };
}

/** A round of direct checks beside the relay: punch and check in one go, the relay carrying traffic meanwhile, so a miss costs nothing. */
function startRound(state: RelayedState, peer: PeerCandidates, now: number): PathStep {
  return { state: { ...state, round: { since: now, lastSentAt: now } }, actions: [{ kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }] };
}

/** Through the peer's relay address now, with a direct round beside it. */
function relayWithRound(input: PathInput, currentVia: string | undefined): PathStep {
  const relayed = relayOrWait(input, [], currentVia);
  if (input.peer.direct.length === 0) return relayed;
  const round = startRound(relayed.state as RelayedState, input.peer, input.now);
  return { state: round.state, actions: [...relayed.actions, ...round.actions] };
}

function goDirect(input: PathInput, endpoint: Endpoint, actions: PathAction[]): PathStep {
  const { now, peer } = input;
  const text = formatEndpoint(endpoint);
  return {
    state: { phase: 'direct', fingerprint: peer.fingerprint, since: now, endpoint: text, lastOkAt: input.lastSuccess?.at ?? now, lastSentAt: now },
    actions: [...actions, { kind: 'endpoint', endpoint: text }],
  };
}

export function stepPath(state: PathState | undefined, input: PathInput): PathStep {
  const { now, peer } = input;
  if (!state) return input.wasRelayed && input.relayAvailable && peer.relay ? relayWithRound(input, undefined) : begin(input, []);
  // New candidates (the peer moved, its NAT rebound, its agent restarted): everything
  // starts over, but a relayed peer is not left on its old relay address for a whole
  // round (a restarted agent has a new allocation; the old one carries nothing): it goes
  // through the new one at once, and the direct round runs beside it.
  if (state.fingerprint !== peer.fingerprint) {
    if (state.phase === 'relayed' && input.relayAvailable && peer.relay) return relayWithRound(input, state.via);
    return begin(input, []);
  }
  switch (state.phase) {
    case 'punching': {
      const ok = succeededSince(input, state.since);
      if (ok) return goDirect(input, ok, []);
      if (now - state.since >= K.PUNCH_SETTLE_MS) {
        return { state: { phase: 'checking', fingerprint: state.fingerprint, since: now, lastSentAt: now }, actions: [{ kind: 'check', to: peer.direct }] };
      }
      if (state.punches < K.PUNCH_REPEATS && now - state.lastSentAt >= K.CHECK_INTERVAL_MS) {
        return { state: { ...state, punches: state.punches + 1, lastSentAt: now }, actions: [{ kind: 'punch', to: peer.direct }] };
      }
      return { state, actions: [] };
    }
    case 'checking': {
      const ok = succeededSince(input, state.since - K.PUNCH_SETTLE_MS);
      if (ok) return goDirect(input, ok, []);
      if (now - state.since >= K.CHECK_ROUND_MS) return relayOrWait(input, []);
      if (now - state.lastSentAt >= K.CHECK_INTERVAL_MS) return { state: { ...state, lastSentAt: now }, actions: [{ kind: 'check', to: peer.direct }] };
      return { state, actions: [] };
    }
    case 'direct': {
      const lastOkAt = Math.max(state.lastOkAt, input.lastSuccess?.at ?? 0);
      if (now - lastOkAt >= K.DIRECT_LOST_MS) return begin(input, []);
      const moved = input.lastSuccess && input.lastSuccess.at > state.lastOkAt && formatEndpoint(input.lastSuccess.endpoint) !== state.endpoint;
      if (moved) return goDirect(input, input.lastSuccess!.endpoint, []);
      const endpoint = state.endpoint;
      if (now - state.lastSentAt >= K.DIRECT_KEEPALIVE_MS) {
        return { state: { ...state, lastOkAt, lastSentAt: now, pendingSince: now, suspected: false }, actions: [{ kind: 'check', to: [parseEndpoint(endpoint)!] }] };
      }
      const pending = state.pendingSince !== undefined && lastOkAt < state.pendingSince;
      if (pending && !state.suspected && now - state.pendingSince! >= K.DIRECT_SUSPECT_MS) {
        return { state: { ...state, lastOkAt, suspected: true }, actions: [{ kind: 'suspect' }] };
      }
      return { state: { ...state, lastOkAt, ...(pending ? {} : { pendingSince: undefined, suspected: false }) }, actions: [] };
    }
    case 'relayed': {
      const round = state.round;
      const ok = succeededSince(input, round ? round.since - K.PUNCH_SETTLE_MS : state.since);
      if (ok && peer.direct.length > 0) return goDirect(input, ok, []);
      // No relay when the state began (TURN down, not configured yet) but one now: use it.
      if (!state.via && input.relayAvailable && peer.relay) {
        return { state: { ...state, via: formatEndpoint(peer.relay) }, actions: [{ kind: 'relay', peerRelay: peer.relay }] };
      }
      if (round) {
        if (now - round.since >= K.CHECK_ROUND_MS) return { state: { ...state, round: undefined, nextRoundAt: now + K.DIRECT_RETRY_MS }, actions: [] };
        if (now - round.lastSentAt >= K.CHECK_INTERVAL_MS) return { state: { ...state, round: { ...round, lastSentAt: now } }, actions: [{ kind: 'check', to: peer.direct }] };
        return { state, actions: [] };
      }
      if (now >= state.nextRoundAt && peer.direct.length > 0) return startRound(state, peer, now);
      return { state, actions: [] };
    }
  }
}
