// Path selection on a simulated clock: the decisions the engine will execute.
import { describe, expect, it } from 'vitest';
import * as K from '../../../../node-agent/engine/knobs.js';
import { stepPath, type PathInput, type PathState, type PeerCandidates } from '../../../../node-agent/engine/path.js';

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
      peer, relayAvailable: true, lastSuccess: now >= answerAt ? { endpoint: reflexive, at: answerAt } : undefined,
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
    const { log } = simulate(K.PUNCH_SETTLE_MS - 50, () => ({ peer, relayAvailable: true }));
    expect(log.every((l) => l.kind === 'punch')).toBe(true);
  });

  it('falls back to the relay after a round without answer, and upgrades when a later round succeeds', () => {
    const fallback = K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS;
    const { state, log } = simulate(fallback, () => ({ peer, relayAvailable: true }));
    expect(log.filter((l) => l.kind === 'relay')).toEqual([{ at: fallback, kind: 'relay', detail: '192.0.2.10:49160' }]);
    expect(state.phase).toBe('relayed');
    // a minute later a new round starts; this time the peer answers
    const roundAt = fallback + K.DIRECT_RETRY_MS;
    const later = simulate(roundAt + 1000, (now) => ({
      peer, relayAvailable: true, lastSuccess: now >= roundAt + 400 ? { endpoint: reflexive, at: roundAt + 400 } : undefined,
    }), { state, at: fallback + 50 });
    expect(later.log.filter((l) => l.at < roundAt)).toEqual([]);
    expect(later.log.find((l) => l.kind === 'punch')!.at).toBe(roundAt);
    expect(later.log.filter((l) => l.kind === 'endpoint')).toEqual([{ at: roundAt + 400, kind: 'endpoint', detail: '198.51.100.6:51820' }]);
    expect(later.state.phase).toBe('direct');
  });

  it('keeps a direct path alive with a check every interval and starts over when it stops answering', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const { log } = simulate(K.DIRECT_LOST_MS, () => ({ peer, relayAvailable: true }), { state: direct, at: 50 });
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
    const { state, log } = simulate(4 * K.DIRECT_LOST_MS, (now) => ({ peer, relayAvailable: true, lastSuccess: answered(now) }), { state: direct, at: 50 });
    expect(log.filter((l) => l.kind === 'check').length).toBeGreaterThanOrEqual(15);
    expect(log.filter((l) => l.kind !== 'check')).toEqual([]);
    expect(state).toMatchObject({ phase: 'direct', endpoint: '198.51.100.6:51820' });
  });

  it('follows the peer to the endpoint that answers when its path moves', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const step = stepPath(direct, { now: 5000, peer, relayAvailable: true, lastSuccess: { endpoint: local, at: 4900 } });
    expect(step.actions).toEqual([{ kind: 'endpoint', endpoint: '10.2.0.2:51820' }]);
  });

  it('starts over when the peer publishes new candidates', () => {
    const direct: PathState = { phase: 'direct', fingerprint: 'v1', since: 0, endpoint: '198.51.100.6:51820', lastOkAt: 0, lastSentAt: 0 };
    const step = stepPath(direct, { now: 100, peer: { ...peer, fingerprint: 'v2' }, relayAvailable: true });
    expect(step.state.phase).toBe('punching');
    expect(step.actions.map((a) => a.kind)).toEqual(['punch']);
  });

  it('moves a relayed peer to its new relay address at once when its candidates change, checking direct beside it', () => {
    const moved = { address: '192.0.2.10', port: 50111 };
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const step = stepPath(relayed, { now: 100, peer: { ...peer, fingerprint: 'v2', relay: moved }, relayAvailable: true });
    expect(step.state).toMatchObject({ phase: 'relayed', fingerprint: 'v2', via: '192.0.2.10:50111' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: moved }, { kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }]);
    // The round goes on: a direct answer still wins, no answer leaves the relay alone.
    const { state, log } = simulate(100 + K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 500, () => ({ peer: { ...peer, fingerprint: 'v2', relay: moved }, relayAvailable: true }),
      { state: step.state, at: 150 });
    expect(state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:50111', round: undefined });
    expect(log.filter((l) => l.kind === 'relay' || l.kind === 'endpoint')).toEqual([]);
    expect(log.filter((l) => l.kind === 'check').length).toBeGreaterThan(10);
    const direct = stepPath(step.state, { now: 400, peer: { ...peer, fingerprint: 'v2', relay: moved }, relayAvailable: true, lastSuccess: { endpoint: reflexive, at: 350 } });
    expect(direct.actions).toEqual([{ kind: 'endpoint', endpoint: '198.51.100.6:51820' }]);
  });

  it('takes the relay at once for a peer the previous agent had relayed, checking direct beside it', () => {
    const step = stepPath(undefined, { now: 0, peer, relayAvailable: true, wasRelayed: true });
    expect(step.state).toMatchObject({ phase: 'relayed', via: '192.0.2.10:49160' });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }, { kind: 'punch', to: peer.direct }, { kind: 'check', to: peer.direct }]);
    // Without a relay of its own yet, the hint is no use: the usual round.
    expect(stepPath(undefined, { now: 0, peer, relayAvailable: false, wasRelayed: true }).state.phase).toBe('punching');
  });

  it('keeps the relay link when only the direct candidates of a relayed peer change', () => {
    const relayed: PathState = { phase: 'relayed', fingerprint: 'v1', since: 0, nextRoundAt: K.DIRECT_RETRY_MS, via: '192.0.2.10:49160' };
    const step = stepPath(relayed, { now: 100, peer: { ...peer, fingerprint: 'v2' }, relayAvailable: true });
    expect(step.actions.map((a) => a.kind)).toEqual(['punch', 'check']);
  });

  it('goes straight to the relay for a peer without direct candidates', () => {
    const step = stepPath(undefined, { now: 0, peer: { fingerprint: 'r', direct: [], relay }, relayAvailable: true });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
  });

  it('waits without relay when none is available, and takes one as soon as it is', () => {
    const fallback = K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS;
    const { state, log } = simulate(fallback, () => ({ peer, relayAvailable: false }));
    expect(state.phase).toBe('relayed');
    expect(log.some((l) => l.kind === 'relay')).toBe(false);
    const step = stepPath(state, { now: fallback + 50, peer, relayAvailable: true });
    expect(step.actions).toEqual([{ kind: 'relay', peerRelay: relay }]);
  });

  it('takes a check that reached us from the peer during punching as proof of a direct path', () => {
    const first = stepPath(undefined, { now: 0, peer, relayAvailable: true });
    const step = stepPath(first.state, { now: 300, peer, relayAvailable: true, lastSuccess: { endpoint: { address: '203.0.113.9', port: 40000 }, at: 250 } });
    expect(step.actions).toEqual([{ kind: 'endpoint', endpoint: '203.0.113.9:40000' }]);
  });
});
