// Pure path selection for one peer, ICE-like but over WireGuard's own port: punch with a
// small TTL, wait, then send connectivity checks to every direct candidate; the first
// candidate that answers becomes WireGuard's endpoint. No answer within a round: the
// relay, or no path at all (with why) while the relay cannot carry the peer. Either way
// the peer is checked again every minute and moved to direct when a check succeeds,
// without touching WireGuard until then. A direct path that stops answering starts over.
// `now` comes in, actions go out; the engine executes them and reports back how a relay
// link it was asked for ended (relayLinkOpened, relayLinkFailed, relayLost).
import { formatEndpoint, parseEndpoint, type Endpoint } from '../nat/stun-address.js';
import * as K from './knobs.js';

/** Between the direct candidates and the relay address in a fingerprint (candidates.ts). */
export const RELAY_PART = ' relay ';

/**
 * Two fingerprints name the same direct candidates (only the relay address may differ):
 * a peer on a direct path has no reason to start over when the far node's relay moved.
 */
export function sameDirectCandidates(a: string, b: string): boolean {
  return a.split(RELAY_PART)[0] === b.split(RELAY_PART)[0];
}

export interface PeerCandidates {
  /** Changes whenever the peer's candidates change (a new round is needed): the direct ones, RELAY_PART, the relay. */
  fingerprint: string;
  /** Where the peer's WireGuard port may be reached directly (local and reflexive). */
  direct: Endpoint[];
  /** Which of `direct` are the peer's own addresses ("ip:port"), the rest being its NAT's mapping (candidates.ts). */
  local?: string[];
  /** The peer's TURN relay address, if it has one. */
  relay?: Endpoint;
}

export type PathState =
  /** `recheck`: the peer moved while direct (checks go with the punches: see stepPath). */
  | { phase: 'punching'; fingerprint: string; since: number; punches: number; lastSentAt: number; recheck?: boolean }
  | { phase: 'checking'; fingerprint: string; since: number; lastSentAt: number }
  /** `pendingSince`: when the latest keepalive check went out, while it is unanswered; `suspected`: its miss was reported. */
  | { phase: 'direct'; fingerprint: string; since: number; endpoint: string; lastOkAt: number; lastSentAt: number; pendingSince?: number; suspected?: boolean }
  /**
   * WireGuard goes through this node's relay to the peer's relay address `via` (the link
   * is open). `opening`: a link asked for (to the peer's new relay address), `via`
   * carrying the peer until it opens.
   */
  | { phase: 'relayed'; fingerprint: string; since: number; nextRoundAt: number; via: string; opening?: string; round?: DirectRound }
  /**
   * No direct path, and no relay link to carry the peer: `reason` says why. `opening`: the
   * peer relay address a link was asked for, while it opens. Direct rounds go on as when
   * relayed; a relay that can carry the peer is taken as soon as there is one.
   */
  | { phase: 'none'; fingerprint: string; since: number; nextRoundAt: number; reason: NoPathReason; opening?: string; round?: DirectRound };

/** A round of direct checks beside the relay (or beside no path). */
export interface DirectRound {
  since: number;
  lastSentAt: number;
}

/**
 * Why a peer has no path. In this order: this node has no TURN allocation; the peer
 * published no relay address; both have one, but the link between them is not open
 * (being opened, or refused and held back for RELAY_RETRY_MS).
 */
export type NoPathReason = 'no-own-relay' | 'no-peer-relay' | 'relay-link-not-open';

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
  /**
   * This node's relay: ready to open links; blocked for a while after a link to this peer
   * failed to open; none (no TURN allocation: not configured, or TURN down).
   */
  ownRelay: 'ready' | 'blocked' | 'none';
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

function begin(input: PathInput, actions: PathAction[], recheck = false): PathStep {
  const { now, peer } = input;
  if (peer.direct.length === 0) return fallBack(input, actions);
  return {
    state: { phase: 'punching', fingerprint: peer.fingerprint, since: now, punches: 1, lastSentAt: now, ...(recheck ? { recheck } : {}) },
    actions: [...actions, { kind: 'punch', to: peer.direct }, ...(recheck ? [{ kind: 'check' as const, to: peer.direct }] : [])],
  };
}

/** The phases a peer is in once direct gave up: relayed, or no path. */
type FallbackState = Extract<PathState, { phase: 'relayed' | 'none' }>;

/** The peer's relay address when this node's relay can open a link to it now. */
function usableRelay(input: PathInput): Endpoint | undefined {
  return input.ownRelay === 'ready' ? input.peer.relay : undefined;
}

function noPathReason(input: PathInput): NoPathReason {
  if (input.ownRelay === 'none') return 'no-own-relay';
  if (!input.peer.relay) return 'no-peer-relay';
  return 'relay-link-not-open';
}

/**
 * Direct gave up (or starts over beside the relay, `old`): a link through the relay is
 * asked for unless the one WireGuard goes through, or the one being opened, already leads
 * to the peer's relay address. Relayed while an open link carries the peer, else no path.
 */
function fallBack(input: PathInput, actions: PathAction[], old?: FallbackState): PathStep {
  const { now, peer } = input;
  const usable = usableRelay(input);
  const target = usable && formatEndpoint(usable);
  const via = old?.phase === 'relayed' ? old.via : undefined;
  // A link still opening toward another address would replace the open one when it
  // opens: asking again (even for the open one) is what supersedes it in the engine.
  const superseded = old?.opening !== undefined && old.opening !== target;
  const opening = target !== undefined && (target !== via || superseded) ? target : undefined;
  if (opening !== undefined && opening !== old?.opening) actions.push({ kind: 'relay', peerRelay: usable! });
  const base = { fingerprint: peer.fingerprint, since: now, nextRoundAt: now + K.DIRECT_RETRY_MS, opening };
  const state: FallbackState = via !== undefined
    ? { phase: 'relayed', ...base, via }
    : { phase: 'none', ...base, reason: opening !== undefined ? 'relay-link-not-open' : noPathReason(input) };
  return { state, actions };
}

/** A round of direct checks beside the relay: punch and check in one go, the relay carrying traffic meanwhile, so a miss costs nothing. */
function startRound(state: FallbackState, peer: PeerCandidates, now: number): PathStep {
  return { state: { ...state, round: { since: now, lastSentAt: now } }, actions: [{ kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }] };
}

/** Through the peer's relay address now, with a direct round beside it. */
function relayWithRound(input: PathInput, old: FallbackState | undefined): PathStep {
  const relayed = fallBack(input, [], old);
  if (input.peer.direct.length === 0) return relayed;
  const round = startRound(relayed.state as FallbackState, input.peer, input.now);
  return { state: round.state, actions: [...relayed.actions, ...round.actions] };
}

/**
 * Relayed or no path, direct not answering: a relay that can carry the peer now (TURN came
 * up, the hold after a refused link ended) is asked for a link; a peer still without one
 * has its reason brought up to date.
 */
function keepFallback(state: FallbackState, input: PathInput): { state: FallbackState; actions: PathAction[] } {
  const usable = usableRelay(input);
  const via = state.phase === 'relayed' ? state.via : undefined;
  if (usable && state.opening === undefined && formatEndpoint(usable) !== via) {
    const opening = formatEndpoint(usable);
    const next: FallbackState = state.phase === 'none' ? { ...state, opening, reason: 'relay-link-not-open' } : { ...state, opening };
    return { state: next, actions: [{ kind: 'relay', peerRelay: usable }] };
  }
  if (state.phase === 'none' && state.opening === undefined) return { state: { ...state, reason: noPathReason(input) }, actions: [] };
  return { state, actions: [] };
}

/** Relayed or no path: a round of direct checks every DIRECT_RETRY_MS, each CHECK_ROUND_MS long. */
function directRounds(state: FallbackState, input: PathInput): PathStep {
  const { now, peer } = input;
  const round = state.round;
  if (round) {
    if (now - round.since >= K.CHECK_ROUND_MS) return { state: { ...state, round: undefined, nextRoundAt: now + K.DIRECT_RETRY_MS }, actions: [] };
    if (now - round.lastSentAt >= K.CHECK_INTERVAL_MS) return { state: { ...state, round: { ...round, lastSentAt: now } }, actions: [{ kind: 'check', to: peer.direct }] };
    return { state, actions: [] };
  }
  if (now >= state.nextRoundAt && peer.direct.length > 0) return startRound(state, peer, now);
  return { state, actions: [] };
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
  if (!state) return input.wasRelayed && usableRelay(input) ? relayWithRound(input, undefined) : begin(input, []);
  // New candidates (the peer moved, its NAT rebound, its agent restarted): everything
  // starts over, but a relayed peer is not left on its old relay address for a whole
  // round (a restarted agent has a new allocation; the old one carries nothing): it goes
  // through the new one at once, and the direct round runs beside it.
  if (state.fingerprint !== peer.fingerprint) {
    // Only the peer's relay moved (its TURN allocation was replaced): a direct path stands.
    if (state.phase === 'direct' && sameDirectCandidates(state.fingerprint, peer.fingerprint)) return { state: { ...state, fingerprint: peer.fingerprint }, actions: [] };
    // Also while this node's relay is held back (a link toward the peer's old address
    // failed): starting over with punches would keep it off the relay for a whole round
    // (CHECK_ROUND_MS), where staying in fallback asks for the link as soon as the hold ends.
    if ((state.phase === 'relayed' || state.phase === 'none') && input.ownRelay !== 'none') return relayWithRound(input, state);
    // A direct peer that moved (new address, its NAT rebound or rebooted) checks us from
    // its new mapping before it republishes (agent.ts, Engine.retryDirectNow): its NAT
    // already maps toward us, so our full-TTL checks cannot meet the conntrack trap and
    // need not wait for the punch to settle. They go with every punch, then as usual.
    return begin(input, [], state.phase === 'direct');
  }
  switch (state.phase) {
    case 'punching': {
      const ok = succeededSince(input, state.since);
      if (ok) return goDirect(input, ok, []);
      if (now - state.since >= K.PUNCH_SETTLE_MS) {
        return { state: { phase: 'checking', fingerprint: state.fingerprint, since: now, lastSentAt: now }, actions: [{ kind: 'check', to: peer.direct }] };
      }
      if (state.punches < K.PUNCH_REPEATS && now - state.lastSentAt >= K.CHECK_INTERVAL_MS) {
        return { state: { ...state, punches: state.punches + 1, lastSentAt: now }, actions: [{ kind: 'punch', to: peer.direct }, ...(state.recheck ? [{ kind: 'check' as const, to: peer.direct }] : [])] };
      }
      return { state, actions: [] };
    }
    case 'checking': {
      const ok = succeededSince(input, state.since - K.PUNCH_SETTLE_MS);
      if (ok) return goDirect(input, ok, []);
      if (now - state.since >= K.CHECK_ROUND_MS) return fallBack(input, []);
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
    case 'relayed':
    case 'none': {
      const ok = succeededSince(input, state.round ? state.round.since - K.PUNCH_SETTLE_MS : state.since);
      if (ok && peer.direct.length > 0) return goDirect(input, ok, []);
      const kept = keepFallback(state, input);
      return kept.actions.length > 0 ? kept : directRounds(kept.state, input);
    }
  }
}

const isFallback = (state: PathState): state is FallbackState => state.phase === 'relayed' || state.phase === 'none';

/**
 * The link asked for to `peerRelay` is open: WireGuard goes through it, the peer is
 * relayed. `since` stays that of the fallback: a check answered meanwhile still counts.
 * A link the state no longer waits for (superseded, the peer gone direct) changes nothing.
 */
export function relayLinkOpened(state: PathState, peerRelay: Endpoint): PathState {
  if (!isFallback(state) || state.opening !== formatEndpoint(peerRelay)) return state;
  const { fingerprint, since, nextRoundAt, round } = state;
  return { phase: 'relayed', fingerprint, since, nextRoundAt, via: state.opening, ...(round ? { round } : {}) };
}

/**
 * The link asked for to `peerRelay` could not be opened (the engine holds this node's
 * relay back for the peer, RELAY_RETRY_MS): no longer waited for, asked again once the
 * relay is ready. A relayed peer stays on the link it has.
 */
export function relayLinkFailed(state: PathState, peerRelay: Endpoint): PathState {
  if (!isFallback(state) || state.opening !== formatEndpoint(peerRelay)) return state;
  return { ...state, opening: undefined };
}

/**
 * This node's relay is gone or was replaced, and every link with it: a relayed peer has
 * no path until a link through the next one opens (its next step asks for it, or says
 * why it cannot).
 */
export function relayLost(state: PathState, now: number): PathState {
  if (state.phase === 'relayed') {
    const { fingerprint, nextRoundAt, round } = state;
    return { phase: 'none', fingerprint, since: now, nextRoundAt, reason: 'relay-link-not-open', ...(round ? { round } : {}) };
  }
  return state.phase === 'none' ? { ...state, opening: undefined } : state;
}
