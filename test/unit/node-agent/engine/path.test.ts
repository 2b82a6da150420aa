// Path selection on a simulated clock: the decisions the engine will execute.
import { peerCandidates } from '../../../../node-agent/engine/candidates.js';
import { describe, expect, it } from 'vitest';
import * as K from '../../../../node-agent/engine/knobs.js';
import { relayLinkFailed, relayLinkOpened, relayLost, stepPath, type PathInput, type PathState, type PeerCandidates } from '../../../../node-agent/engine/path.js';

const reflexive = { address: '198.51.100.6', port: 51820 };
const local = { address: '10.2.0.2', port: 51820 };
const relay = { address: '192.0.2.10', port: 49160 };
const peer: PeerCandidates = { fingerprint: 'v1', direct: [local, reflexive], relay };

/** Runs the decision every 50 ms like the engine's tick, collecting actions with their time. */
function simulate(until: number, input: (now: number) => Omit<PathInput, 'now'>, start?: { state: PathState; at: number }) {
  let state = start?.state;
  const log: { at: number; kind: string; detail: string }[] = [];
  for (let now = start?.at ?? 0; now <= until; now += 50) {
    const step = stepPath(state, { now, ...input(now) });
    state = step.state;
    for (const a of step.actions) {
      const detail = a.kind === 'endpoint' ? a.endpoint : a.kind === 'relay' ? `${a.peerRelay.address}:${a.peerRelay.port}` : a.kind === 'suspect' ? '' : a.to.map((e) => `${e.address}:${e.port}`).join(',');
      log.push({ at: now, kind: a.kind, detail });
    }
  }
  return { state: state!, log };
}

describe('stepPath', () => {
  it('punches with a small TTL, waits, checks every candidate, and goes direct on the first answer', () => {
    const answerAt = K.PUNCH_SETTLE_MS + 300;
    const { state, log } = simulate(3000, (now) => ({
      peer, ownRelay: 'ready', lastSuccess: now >= answerAt ? { endpoint: reflexive, at: answerAt } : undefined,
    }));
    const punches = log.filter((l) => l.kind === 'punch');
    expect(punches.map((p) => p.at)).toEqual([0, K.CHECK_INTERVAL_MS, 2 * K.CHECK_INTERVAL_MS]);
    const firstCheck = log.find((l) => l.kind === 'check')!;
    expect(firstCheck.at).toBe(K.PUNCH_SETTLE_MS);
    expect(firstCheck.detail).toBe('10.2.0.2:51820,198.51.100.6:51820');
    expect(log.filter((l) => l.kind === 'endpoint')).toEqual([{ at: answerAt, kind: 'endpoint', detail: '198.51.100.6:51820' }]);
    expect(log.some((l) => l.kind === 'relay')).toBe(false);
    expect(state).toMatchObject({ phase: 'direct', endpoint: '198.51.100.6:51820' });
  });

  it('never sends a full packet before the punches had time to leave on both sides', () => {
    const { log } = simulate(K.PUNCH_SETTLE_MS - 50, () => ({ peer, ownRelay: 'ready' }));
    expect(log.every((l) => l.kind === 'punch')).toBe(true);
  });

  it('falls back to the relay after a round without answer, and upgrades when a later round succeeds', () => {
    const fallback = K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS;
    const fell = simulate(fallback, () => ({ peer, ownRelay: 'ready' }));
    expect(fell.log.filter((l) => l.kind === 'relay')).toEqual([{ at: fallback, kind: 'relay', detail: '192.0.2.10:49160' }]);
    // no path until the engine reports the link open
    expect(fell.state).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', opening: '192.0.2.10:49160' });
    const state = relayLinkOpened(fell.state, relay);
    expect(state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160', since: fallback });
    // a minute later a new round starts; this time the peer answers
    const roundAt = fallback + K.DIRECT_RETRY_MS;
    const later = simulate(roundAt + 1000, (now) => ({
      peer, ownRelay: 'ready', lastSuccess: now >= roundAt + 400 ? { endpoint: reflexive, at: roundAt + 400 } : undefined,
    }), { state, at: fallback + 50 });
    expect(later.log.filter((l) => l.at < roundAt)).toEqual([]);
    expect(later.log.find((l) => l.kind === 'punch')!.at).toBe(roundAt);
    expect(later.log.filter((l) => l.kind === 'endpoint')).toEqual([{ at: roundAt + 400, kind: 'endpoint', detail: '198.51.100.6:51820' }]);
    expect(later.state.phase).toBe('direct');
  });

  it('keeps a direct path alive with a check every interval and starts over when it stops answering', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const { log } = simulate(K.DIRECT_LOST_MS, () => ({ peer, ownRelay: 'ready' }), { state: direct, at: 50 });
    const checks = log.filter((l) => l.kind === 'check');
    const keepalives = Array.from({ length: Math.ceil(K.DIRECT_LOST_MS / K.DIRECT_KEEPALIVE_MS) - 1 }, (_, i) => (i + 1) * K.DIRECT_KEEPALIVE_MS);
    expect(keepalives.length).toBeGreaterThanOrEqual(2);
    expect(checks.map((c) => c.at)).toEqual(keepalives);
    expect(checks[0]!.detail).toBe('198.51.100.6:51820');
    // each unanswered keepalive is reported once, DIRECT_SUSPECT_MS after it went out
    expect(log.filter((l) => l.kind === 'suspect').map((l) => l.at)).toEqual(keepalives.map((t) => t + K.DIRECT_SUSPECT_MS));
    expect(log.at(-1)).toEqual({ at: K.DIRECT_LOST_MS, kind: 'punch', detail: '10.2.0.2:51820,198.51.100.6:51820' });
  });

  it('reports nothing while keepalive checks are answered in time', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const rtt = 300;
    // every check is answered rtt after it went out (keepalives leave at multiples of the interval)
    const answered = (now: number) => {
      const sent = Math.floor(now / K.DIRECT_KEEPALIVE_MS) * K.DIRECT_KEEPALIVE_MS;
      const at = now >= sent + rtt ? sent + rtt : sent - K.DIRECT_KEEPALIVE_MS + rtt;
      return at > 0 ? { endpoint: reflexive, at } : undefined;
    };
    const { state, log } = simulate(4 * K.DIRECT_LOST_MS, (now) => ({ peer, ownRelay: 'ready', lastSuccess: answered(now) }), { state: direct, at: 50 });
    expect(log.filter((l) => l.kind === 'check').length).toBeGreaterThanOrEqual(15);
    expect(log.filter((l) => l.kind !== 'check')).toEqual([]);
    expect(state).toMatchObject({ phase: 'direct', endpoint: '198.51.100.6:51820' });
  });

  it('follows the peer to the endpoint that answers when its path moves', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const step = stepPath(direct, { now: 5000, peer, ownRelay: 'ready', lastSuccess: { endpoint: local, at: 4900 } });
    expect(step.actions).toEqual([{ kind: 'endpoint', endpoint: '10.2.0.2:51820' }]);
  });

  it('starts over when the peer publishes new candidates, checking at once a peer that was direct (it moved)', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const step = stepPath(direct, { now: 100, peer: { ...peer, fingerprint: 'v2' }, ownRelay: 'ready' });
    expect(step.state).toMatchObject({ phase: 'punching', recheck: true });
    expect(step.actions.map((a) => a.kind)).toEqual(['punch', 'check']);
    // every punch goes with checks; an answer from before the round does not count
    const again = stepPath(step.state, { now: 100 + K.CHECK_INTERVAL_MS, peer: { ...peer, fingerprint: 'v2' }, ownRelay: 'ready', lastSuccess: { endpoint: reflexive, at: 90 } });
    expect(again.state.phase).toBe('punching');
    expect(again.actions.map((a) => a.kind)).toEqual(['punch', 'check']);
    const answered = stepPath(again.state, { now: 350, peer: { ...peer, fingerprint: 'v2' }, ownRelay: 'ready', lastSuccess: { endpoint: reflexive, at: 340 } });
    expect(answered.state).toMatchObject({ phase: 'direct', endpoint: '198.51.100.6:51820' });
    // a peer that was not direct punches and lets the punch settle first, as at the start
    const checking: PathState = { phase: 'checking', fingerprint: 'v1', since: 0, lastSentAt: 0 };
    expect(stepPath(checking, { now: 100, peer: { ...peer, fingerprint: 'v2' }, ownRelay: 'ready' }).actions.map((a) => a.kind)).toEqual(['punch']);
  });

  it('keeps a direct path when only the peer\'s relay address changed (its TURN allocation was replaced)', () => {
    const before = peerCandidates({ candidates: [{ kind: 'local', address: '10.2.0.2', port: 51820 }, { kind: 'relay', address: '192.0.2.10', port: 49160 }], nat: { mapping: 'endpoint-independent' } });
    const after = peerCandidates({ candidates: [{ kind: 'local', address: '10.2.0.2', port: 51820 }, { kind: 'relay', address: '192.0.2.11', port: 50111 }], nat: { mapping: 'endpoint-independent' } });
    const direct: PathState = { phase: 'direct', fingerprint: before.fingerprint, since: 0, endpoint: '10.2.0.2:51820', lastOkAt: 0, lastSentAt: 0 };
    const step = stepPath(direct, { now: 100, peer: after, ownRelay: 'ready' });
    expect(step).toEqual({ state: { ...direct, fingerprint: after.fingerprint }, actions: [] });
    // A new direct candidate still starts over.
    const moved = peerCandidates({ candidates: [{ kind: 'local', address: '10.2.0.9', port: 51820 }, { kind: 'relay', address: '192.0.2.11', port: 50111 }], nat: { mapping: 'endpoint-independent' } });
    expect(stepPath(direct, { now: 100, peer: moved, ownRelay: 'ready' }).state.phase).toBe('punching');
  });

  it('moves a relayed peer to its new relay address at once when its candidates change, checking direct beside it', () => {
    const moved = { address: '192.0.2.10', port: 50111 };
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const step = stepPath(relayed, { now: 100, peer: { ...peer, fingerprint: 'v2', relay: moved }, ownRelay: 'ready' });
    // the old link carries the peer until the new one opens
    expect(step.state).toMatchObject({ phase: 'relayed', fingerprint: 'v2', via: '192.0.2.10:49160', opening: '192.0.2.10:50111' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: moved }, { kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }]);
    const opened = relayLinkOpened(step.state, moved);
    expect(opened).toMatchObject({ phase: 'relayed', via: '192.0.2.10:50111' });
    // The round goes on: a direct answer still wins, no answer leaves the relay alone.
    const { state, log } = simulate(100 + K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 500, () => ({ peer: { ...peer, fingerprint: 'v2', relay: moved }, ownRelay: 'ready' }),
      { state: opened, at: 150 });
    expect(state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:50111', round: undefined });
    expect(log.filter((l) => l.kind === 'relay' || l.kind === 'endpoint')).toEqual([]);
    expect(log.filter((l) => l.kind === 'check').length).toBeGreaterThan(10);
    const direct = stepPath(step.state, { now: 400, peer: { ...peer, fingerprint: 'v2', relay: moved }, ownRelay: 'ready', lastSuccess: { endpoint: reflexive, at: 350 } });
    expect(direct.actions).toEqual([{ kind: 'endpoint', endpoint: '198.51.100.6:51820' }]);
  });

  it('takes the relay at once for a peer the previous agent had relayed, checking direct beside it', () => {
    const step = stepPath(undefined, { now: 0, peer, ownRelay: 'ready', wasRelayed: true });
    expect(step.state).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', opening: '192.0.2.10:49160' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }, { kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }]);
    expect(relayLinkOpened(step.state, relay)).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160', round: { since: 0 } });
    // Without a relay of its own yet, the hint is no use: the usual round.
    expect(stepPath(undefined, { now: 0, peer, ownRelay: 'none', wasRelayed: true }).state.phase).toBe('punching');
  });

  it('keeps the relay link when only the direct candidates of a relayed peer change', () => {
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const step = stepPath(relayed, { now: 100, peer: { ...peer, fingerprint: 'v2' }, ownRelay: 'ready' });
    expect(step.actions.map((a) => a.kind)).toEqual(['punch', 'check']);
    expect(step.state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160', opening: undefined });
  });

  it('keeps a relayed peer on its link with a direct round beside it when its candidates change while the relay is held back, and asks once the hold ends', () => {
    const moved = { address: '192.0.2.10', port: 50111 };
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const next = { ...peer, fingerprint: 'v2', relay: moved };
    const step = stepPath(relayed, { now: 100, peer: next, ownRelay: 'blocked' });
    // not punching from scratch: that would hold the peer off the relay for a whole round
    expect(step.state).toMatchObject({ phase: 'relayed', fingerprint: 'v2', via: '192.0.2.10:49160', opening: undefined, round: { since: 100 } });
    expect(step.actions).toEqual([{ kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }]);
    const ready = stepPath(step.state, { now: 150, peer: next, ownRelay: 'ready' });
    expect(ready.actions).toEqual([{ kind: 'relay', peerRelay: moved }]);
    // A peer with no path at all, likewise: it waits in fallback, not in a punching round.
    const none: PathState = { phase: 'none', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, reason: 'relay-link-not-open' };
    expect(stepPath(none, { now: 100, peer: next, ownRelay: 'blocked' }).state).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', round: { since: 100 } });
    // Without any relay of its own, it starts over as a new peer would.
    expect(stepPath(none, { now: 100, peer: next, ownRelay: 'none' }).state.phase).toBe('punching');
  });

  it('supersedes a link still opening toward an address the peer no longer has', () => {
    const moving: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160', opening: '192.0.2.10:50111' };
    // back on the address of the open link: asked again, so that the other link does not replace it
    const step = stepPath(moving, { now: 100, peer: { ...peer, fingerprint: 'v3' }, ownRelay: 'ready' });
    expect(step.actions[0]).toEqual({ kind: 'relay', peerRelay: relay });
    expect(step.state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160', opening: '192.0.2.10:49160' });
    expect(relayLinkOpened(step.state, { address: '192.0.2.10', port: 50111 })).toBe(step.state);
    expect(relayLinkOpened(step.state, relay)).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160' });
  });

  it('goes straight to the relay for a peer without direct candidates', () => {
    const step = stepPath(undefined, { now: 0, peer: { fingerprint: 'r', direct: [], relay }, ownRelay: 'ready' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
  });

  it('has no path without a relay of its own, and is relayed once a relay appears and its link opens', () => {
    const fallback = K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS;
    const { state, log } = simulate(fallback, () => ({ peer, ownRelay: 'none' }));
    expect(state).toMatchObject({ phase: 'none', reason: 'no-own-relay', since: fallback });
    expect(log.some((l) => l.kind === 'relay')).toBe(false);
    const step = stepPath(state, { now: fallback + 50, peer, ownRelay: 'ready' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
    expect(step.state).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', opening: '192.0.2.10:49160' });
    // asked once: the next steps wait for the link
    expect(stepPath(step.state, { now: fallback + 100, peer, ownRelay: 'ready' }).actions).toEqual([]);
    expect(relayLinkOpened(step.state, relay)).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160' });
  });

  it('has no path when the peer published no relay, and says so', () => {
    const noRelay: PeerCandidates = { fingerprint: 'd', direct: peer.direct };
    const { state, log } = simulate(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS, () => ({ peer: noRelay, ownRelay: 'ready' }));
    expect(state).toMatchObject({ phase: 'none', reason: 'no-peer-relay' });
    expect(log.some((l) => l.kind === 'relay')).toBe(false);
    expect(stepPath(undefined, { now: 0, peer: { fingerprint: 'e', direct: [] }, ownRelay: 'ready' }).state).toMatchObject({ phase: 'none', reason: 'no-peer-relay' });
  });

  it('goes from relayed to no path when the relay is lost, and back once a link through the next one opens', () => {
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const lost = relayLost(relayed, 1000);
    expect(lost).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', since: 1000, nextRoundAt: K.DIRECT_RETRY_MS });
    // no relay any more: the reason says so at the next step
    expect(stepPath(lost, { now: 1050, peer, ownRelay: 'none' })).toEqual({ state: { ...lost, reason: 'no-own-relay' }, actions: [] });
    // a new relay: a link through it is asked for, and the peer is relayed once it opens
    const asked = stepPath(lost, { now: 1050, peer, ownRelay: 'ready' });
    expect(asked.actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
    expect(relayLinkOpened(asked.state, relay)).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160' });
    // a state that asked for nothing is left alone
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    expect(relayLost(direct, 1000)).toBe(direct);
    expect(relayLinkOpened(direct, relay)).toBe(direct);
  });

  it('asks for a refused relay link again once the relay is ready, and keeps a relayed peer on the link it has', () => {
    const waiting: PathState = { phase: 'none', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, reason: 'relay-link-not-open', opening: '192.0.2.10:49160' };
    const failed = relayLinkFailed(waiting, relay);
    expect(failed).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', opening: undefined });
    expect(stepPath(failed, { now: 100, peer, ownRelay: 'blocked' })).toEqual({ state: failed, actions: [] });
    expect(stepPath(failed, { now: 2100, peer, ownRelay: 'ready' }).actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
    // news of a link no longer asked for changes nothing
    const other = { address: '192.0.2.10', port: 50111 };
    expect(relayLinkOpened(waiting, other)).toBe(waiting);
    expect(relayLinkFailed(waiting, other)).toBe(waiting);
    // the peer's new relay address refused: the old link still carries it
    const moving: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160', opening: '192.0.2.10:50111' };
    expect(relayLinkFailed(moving, other)).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160', opening: undefined });
  });

  it('keeps checking direct every minute while it has no path, and goes direct when a round succeeds', () => {
    const fallback = K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS;
    const { state } = simulate(fallback, () => ({ peer, ownRelay: 'none' }));
    const roundAt = fallback + K.DIRECT_RETRY_MS;
    const later = simulate(roundAt + 1000, (now) => ({
      peer, ownRelay: 'none', lastSuccess: now >= roundAt + 400 ? { endpoint: local, at: roundAt + 400 } : undefined,
    }), { state, at: fallback + 50 });
    expect(later.log.find((l) => l.kind === 'punch')!.at).toBe(roundAt);
    expect(later.log.filter((l) => l.kind === 'endpoint')).toEqual([{ at: roundAt + 400, kind: 'endpoint', detail: '10.2.0.2:51820' }]);
    expect(later.state.phase).toBe('direct');
  });

  it('takes a check that reached us from the peer during punching as proof of a direct path', () => {
    const first = stepPath(undefined, { now: 0, peer, ownRelay: 'ready' });
    const step = stepPath(first.state, { now: 300, peer, ownRelay: 'ready', lastSuccess: { endpoint: { address: '203.0.113.9', port: 40000 }, at: 250 } });
    expect(step.actions).toEqual([{ kind: 'endpoint', endpoint: '203.0.113.9:40000' }]);
  });
});
