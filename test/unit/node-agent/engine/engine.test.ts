// The engine on a fake clock with a fake prober, checks and relay: which actions reach
// them, and which WireGuard endpoint comes out of path.ts's decisions.
import { describe, expect, it } from 'vitest';
import { peerCandidates } from '../../../../node-agent/engine/candidates.js';
import type { CheckSuccess } from '../../../../node-agent/engine/checks.js';
import { Engine, type EngineChecks, type EngineProber, type EngineRelay } from '../../../../node-agent/engine/engine.js';
import * as K from '../../../../node-agent/engine/knobs.js';
import { formatEndpoint, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import type { NodeRecord } from '../../../../node-agent/signal/record.js';
import { FakeTimers } from '../nat/fake-net.js';
import { recordOf } from '../signal/records.js';

const TTL = 2;

function record(node: string, i: number, patch: Partial<NodeRecord> = {}): NodeRecord {
  return { ...recordOf(node, i), updatedAt: '2025-01-01T00:00:00.000Z', ...patch };
}

const ep = (e: Endpoint): string => formatEndpoint(e);

class FakeProber implements EngineProber {
  readonly punches: { at: number; to: string; ttl: number }[] = [];
  constructor(private readonly timers: FakeTimers) {}
  async punch(to: Endpoint, ttl: number): Promise<void> {
    this.punches.push({ at: this.timers.now(), to: ep(to), ttl });
  }
}

/** Checks whose answers the test scripts: `reachable` endpoints answer 20 ms after a check. */
class FakeChecks implements EngineChecks {
  readonly sent: { at: number; peer: string; to: string }[] = [];
  readonly forgotten: string[] = [];
  readonly reachable = new Set<string>();
  /** Per peer, the latest answer per endpoint. */
  private readonly ok = new Map<string, Map<string, CheckSuccess>>();
  /** Milliseconds until an endpoint's answer comes (20 unless set). */
  readonly rtt = new Map<string, number>();
  constructor(private readonly timers: FakeTimers) {}
  check(peer: string, endpoints: readonly Endpoint[]): void {
    for (const e of endpoints) {
      this.sent.push({ at: this.timers.now(), peer, to: ep(e) });
      if (this.reachable.has(ep(e))) this.timers.setTimeout(() => this.answer(peer, e), this.rtt.get(ep(e)) ?? 20);
    }
  }
  answer(peer: string, e: Endpoint): void {
    if (!this.ok.has(peer)) this.ok.set(peer, new Map());
    this.ok.get(peer)!.set(ep(e), { endpoint: e, at: this.timers.now() });
  }
  successesOf(peer: string): CheckSuccess[] {
    return [...this.ok.get(peer)?.values() ?? []];
  }
  forget(peer: string): void {
    this.forgotten.push(peer);
    this.ok.delete(peer);
  }
}

class FakeRelay implements EngineRelay {
  readonly opened: string[] = [];
  readonly forgotten: string[] = [];
  failNext = 0;
  /** While set, links open only once it resolves (TURN round trips). */
  gate: Promise<void> | undefined;
  private readonly links = new Map<string, number>();
  /** `next`: the loopback port of the first link. */
  constructor(private next = 40000) {}
  async endpointFor(peerRelay: Endpoint): Promise<string> {
    this.opened.push(ep(peerRelay));
    await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('403 Forbidden');
    }
    const port = this.links.get(ep(peerRelay)) ?? this.next++;
    this.links.set(ep(peerRelay), port);
    return `127.0.0.1:${port}`;
  }
  forget(peerRelay: Endpoint): void {
    this.forgotten.push(ep(peerRelay));
    this.links.delete(ep(peerRelay));
  }
}

function setup(o: { relay?: boolean; onSuspect?: (peer: string) => void; relayedBefore?: Set<string> } = {}) {
  const timers = new FakeTimers();
  const prober = new FakeProber(timers);
  const checks = new FakeChecks(timers);
  const relay = o.relay === false ? undefined : new FakeRelay();
  const errors: unknown[] = [];
  let changes = 0;
  const engine = new Engine({ selfNode: 'a', prober, checks, ...(relay ? { relay } : {}), punchTtl: TTL, timers, onChange: () => changes++, onError: (e) => errors.push(e), ...(o.onSuspect ? { onSuspect: o.onSuspect } : {}), ...(o.relayedBefore ? { relayedBefore: o.relayedBefore } : {}) });
  return { timers, prober, checks, relay, engine, errors, changes: () => changes };
}

const peers = (...records: NodeRecord[]): Map<string, NodeRecord> => new Map(records.map((r) => [r.node, r]));

describe('Engine', () => {
  const b = record('b', 2);
  const [bLocal, bReflexive, bRelay] = b.candidates.map((c) => `${c.address}:${c.port}`) as [string, string, string];

  it('takes a peer direct: punches at once with the punch TTL, checks after the settle time, points WireGuard at the endpoint that answered', async () => {
    const { timers, prober, checks, relay, engine, changes } = setup();
    checks.reachable.add(bReflexive);
    engine.setPeers(peers(record('a', 1), b));
    // the first punch goes out in setPeers, before any tick
    expect(prober.punches.filter((p) => p.at === 0)).toEqual([{ at: 0, to: bLocal, ttl: TTL }, { at: 0, to: bReflexive, ttl: TTL }]);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, undefined]]));
    expect(changes()).toBe(1); // a new peer, no opinion yet
    await timers.advance(K.PUNCH_SETTLE_MS - 1);
    expect(checks.sent).toEqual([]);
    await timers.advance(1);
    expect(checks.sent).toEqual([{ at: K.PUNCH_SETTLE_MS, peer: 'b', to: bLocal }, { at: K.PUNCH_SETTLE_MS, peer: 'b', to: bReflexive }]);
    await timers.advance(100);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, bReflexive]]));
    expect(changes()).toBe(2);
    expect(engine.status()).toEqual([{ node: 'b', publicKey: b.publicKey, phase: 'direct', endpoint: bReflexive, since: K.PUNCH_SETTLE_MS + 50, relayed: false, via: 'reflexive' }]);
    expect(prober.punches.map((p) => p.at)).toEqual([0, 0, 200, 200, 400, 400]);
    expect(relay!.opened).toEqual([]);
    engine.stop();
  });

  it('a peer on our LAN gets its LAN address even when its router hairpins our checks and answers last, and keeps it', async () => {
    const { timers, checks, engine } = setup();
    const hairpinned = { address: '192.168.2.1', port: 51820 }; // the router's LAN address, masqueraded
    checks.reachable.add(bLocal);
    checks.reachable.add(bReflexive);
    checks.rtt.set(bReflexive, 30); // through the router: answered after the LAN check
    engine.setPeers(peers(record('a', 1), b));
    await timers.advance(K.PUNCH_SETTLE_MS + 100);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, bLocal]]));
    // The peer's triggered check through the hairpin is answered later still: nothing moves.
    checks.answer('b', hairpinned);
    await timers.advance(3 * K.DIRECT_KEEPALIVE_MS);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, bLocal]]));
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', endpoint: bLocal, via: 'lan' });
    engine.stop();
  });

  it('a hairpinned endpoint that answered first gives way to the LAN address as soon as it answers', async () => {
    const { timers, checks, engine } = setup();
    checks.reachable.add(bLocal);
    checks.reachable.add(bReflexive);
    checks.rtt.set(bLocal, 120); // the LAN answer comes two ticks after the hairpinned one
    engine.setPeers(peers(record('a', 1), b));
    await timers.advance(K.PUNCH_SETTLE_MS + 50);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, bReflexive]]));
    await timers.advance(100);
    expect(engine.desiredEndpoints()).toEqual(new Map([[b.publicKey, bLocal]]));
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', via: 'lan' });
    engine.stop();
  });

  it('falls back to the relay when no check is answered, and upgrades to direct (dropping the link) when a later round is', async () => {
    const { timers, relay, checks, engine, changes } = setup();
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS - 50);
    expect(relay!.opened).toEqual([]);
    await timers.advance(50);
    expect(relay!.opened).toEqual([bRelay]);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe('127.0.0.1:40000');
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', relayed: true, endpoint: '127.0.0.1:40000' });
    expect(changes()).toBe(2);

    checks.reachable.add(bLocal);
    await timers.advance(K.DIRECT_RETRY_MS + 200);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(bLocal);
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', relayed: false });
    expect(relay!.forgotten).toEqual([bRelay]);
    engine.stop();
  });

  it('relays at once a peer the previous agent had relayed, and only that one', async () => {
    const c = record('c', 3);
    const { timers, relay, engine } = setup({ relayedBefore: new Set(['b']) });
    engine.setPeers(peers(b, c));
    await timers.advance(50);
    expect(relay!.opened).toEqual([bRelay]);
    expect(engine.status().find((p) => p.node === 'b')).toMatchObject({ phase: 'relayed', relayed: true });
    expect(engine.status().find((p) => p.node === 'c')).toMatchObject({ phase: 'punching', relayed: false });
    engine.stop();
  });

  it('starts a round of checks toward relayed peers at once when asked (this node\'s own record changed)', async () => {
    const { timers, prober, checks, engine } = setup();
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 1000);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', relayed: true });
    const at = timers.now();
    checks.reachable.add(bReflexive);
    engine.retryDirectNow();
    // punch and check at once, long before DIRECT_RETRY_MS
    expect(prober.punches.filter((p) => p.at === at).map((p) => p.to)).toEqual([bLocal, bReflexive]);
    expect(checks.sent.filter((c) => c.at === at).map((c) => c.to)).toEqual([bLocal, bReflexive]);
    await timers.advance(100);
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', endpoint: bReflexive, relayed: false });
    engine.stop();
  });

  it('reports a direct peer whose keepalive check goes unanswered (this node\'s NAT may have rebound), and keeps its endpoint', async () => {
    const suspects: { at: number; peer: string }[] = [];
    const { timers, checks, engine } = setup({ onSuspect: (peer) => suspects.push({ at: timers.now(), peer }) });
    checks.reachable.add(bReflexive);
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + 100);
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', endpoint: bReflexive });
    await timers.advance(3 * K.DIRECT_KEEPALIVE_MS);
    expect(suspects).toEqual([]); // answered keepalives: nothing to report
    checks.reachable.delete(bReflexive);
    const lostFrom = timers.now();
    await timers.advance(K.DIRECT_KEEPALIVE_MS + K.DIRECT_SUSPECT_MS);
    expect(suspects).toHaveLength(1);
    expect(suspects[0]!.peer).toBe('b');
    expect(suspects[0]!.at - lostFrom).toBeLessThanOrEqual(K.DIRECT_KEEPALIVE_MS + K.DIRECT_SUSPECT_MS);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(bReflexive);
    engine.stop();
  });

  it('drops a removed peer: its state, its checks and its relay link', async () => {
    const { timers, relay, checks, engine, changes } = setup();
    const c = record('c', 3, { candidates: [{ kind: 'relay', address: '192.0.2.10', port: 50003 }] });
    engine.setPeers(peers(b, c));
    await timers.advance(50);
    expect(engine.desiredEndpoints().get(c.publicKey)).toBe('127.0.0.1:40000');
    const before = changes();
    engine.setPeers(peers(b));
    expect([...engine.desiredEndpoints().keys()]).toEqual([b.publicKey]);
    expect(changes()).toBe(before + 1);
    expect(relay!.forgotten).toEqual(['192.0.2.10:50003']);
    expect(checks.forgotten).toEqual(['c']);
    engine.setPeers(peers(b, c)); // back again: a new start
    await timers.advance(50);
    expect(relay!.opened).toEqual(['192.0.2.10:50003', '192.0.2.10:50003']);
    engine.stop();
  });

  it('starts a new round when a peer\'s candidates change, keeping the old endpoint until a new one answers', async () => {
    const { timers, prober, checks, engine } = setup();
    checks.reachable.add(bReflexive);
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + 100);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(bReflexive);

    const moved = { address: '203.0.113.7', port: 41000 };
    checks.reachable.add(ep(moved));
    const b2 = { ...b, candidates: b.candidates.map((c) => (c.kind === 'reflexive' ? { ...c, ...moved } : c)) };
    const at = timers.now();
    engine.setPeers(peers(b2));
    expect(prober.punches.filter((p) => p.at === at).map((p) => p.to)).toEqual([bLocal, ep(moved)]);
    expect(engine.status()[0]).toMatchObject({ phase: 'punching', endpoint: bReflexive });
    // b was direct: it checked us from its new mapping before republishing, so the checks
    // go with the punch, not after the settle (path.ts, recheck); the new candidates only
    expect(checks.sent.filter((s) => s.at === at).map((s) => s.to)).toEqual([bLocal, ep(moved)]);
    await timers.advance(100);
    // the old answer predates the round and does not count: the new one does, at once
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(ep(moved));
    engine.stop();
  });

  it('retries a relay link that failed to open after RELAY_RETRY_MS, reporting the failure', async () => {
    const { timers, relay, engine, errors } = setup();
    relay!.failNext = 1;
    engine.setPeers(peers(record('c', 3, { candidates: [{ kind: 'relay', address: '192.0.2.10', port: 50003 }] })));
    await timers.advance(K.RELAY_RETRY_MS - 50);
    expect(relay!.opened).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(engine.status()[0]).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', endpoint: undefined, relayed: false });
    await timers.advance(100);
    expect(relay!.opened).toHaveLength(2);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:40000', relayed: true });
    engine.stop();
  });

  it('asks at once for a link to a peer\'s new relay address even while a link to its old one is held back, and keeps the peer on its link meanwhile', async () => {
    const { timers, relay, engine } = setup();
    const old = { kind: 'relay' as const, address: '192.0.2.10', port: 50003 };
    const c = (port: number) => record('c', 3, { candidates: [{ ...old, port }], updatedAt: `2025-01-01T00:00:0${port - 50000}.000Z` });
    engine.setPeers(peers(c(50003)));
    await timers.advance(50);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:40000' });
    // The peer replaced its allocation twice: the link to the first new address fails (its
    // record was already stale), and the hold it causes must not delay the second one.
    relay!.failNext = 1;
    engine.setPeers(peers(c(50004)));
    await timers.advance(50);
    expect(relay!.opened).toEqual(['192.0.2.10:50003', '192.0.2.10:50004']);
    engine.setPeers(peers(c(50005)));
    await timers.advance(50);
    expect(relay!.opened).toEqual(['192.0.2.10:50003', '192.0.2.10:50004', '192.0.2.10:50005']);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:40001', relayed: true });
    engine.stop();
  });

  it('without a relay, has no path and says why; relayed once a relay is set, no path again when it goes', async () => {
    const { timers, engine } = setup({ relay: false });
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 500);
    expect(engine.status()[0]).toMatchObject({ phase: 'none', reason: 'no-own-relay', endpoint: undefined, relayed: false });
    const relay = new FakeRelay();
    engine.setRelay(relay);
    await timers.advance(0);
    expect(relay.opened).toEqual([bRelay]);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:40000', relayed: true });
    expect(engine.status()[0]!.reason).toBeUndefined();
    // TURN lost, no new allocation: no path, with why, at once
    engine.setRelay(undefined);
    expect(engine.status()[0]).toMatchObject({ phase: 'none', reason: 'no-own-relay', relayed: false });
    // a new allocation: relayed through it
    const next = new FakeRelay(41000);
    engine.setRelay(next);
    await timers.advance(0);
    expect(next.opened).toEqual([bRelay]);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:41000', relayed: true });
    engine.stop();
  });

  it('has no path while the relay link opens, and is relayed from the moment it is open', async () => {
    const { timers, relay, engine } = setup();
    let open!: () => void;
    relay!.gate = new Promise((r) => (open = r));
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 500);
    expect(relay!.opened).toEqual([bRelay]);
    expect(engine.status()[0]).toMatchObject({ phase: 'none', reason: 'relay-link-not-open', endpoint: undefined, relayed: false });
    open();
    await timers.advance(0);
    expect(engine.status()[0]).toMatchObject({ phase: 'relayed', endpoint: '127.0.0.1:40000', relayed: true });
    expect(relay!.opened).toEqual([bRelay]); // asked once
    engine.stop();
  });

  it('has no path to a peer that published no relay, and says why', async () => {
    const { timers, relay, engine } = setup();
    engine.setPeers(peers({ ...b, candidates: b.candidates.filter((c) => c.kind !== 'relay') }));
    await timers.advance(K.PUNCH_SETTLE_MS + K.CHECK_ROUND_MS + 500);
    expect(engine.status()[0]).toMatchObject({ phase: 'none', reason: 'no-peer-relay', endpoint: undefined, relayed: false });
    expect(relay!.opened).toEqual([]);
    engine.stop();
  });

  it('as the node whose name sorts last, holds its first endpoint for a peer back FIRST_ENDPOINT_HOLD_MS, and no later one', async () => {
    const timers = new FakeTimers();
    const checks = new FakeChecks(timers);
    const engine = new Engine({ selfNode: 'z', prober: new FakeProber(timers), checks, relay: new FakeRelay(), punchTtl: TTL, timers, onChange: () => {} });
    checks.reachable.add(bReflexive);
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + 50);
    expect(engine.status()[0]).toMatchObject({ phase: 'direct', endpoint: undefined });
    const decided = engine.status()[0]!.since!;
    await timers.advance(decided + K.FIRST_ENDPOINT_HOLD_MS - timers.now() - 1);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBeUndefined();
    await timers.advance(50);
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(bReflexive);

    // a move of an existing session starts no handshake: given at once
    const moved = { address: '203.0.113.7', port: 41000 };
    checks.reachable.add(ep(moved));
    engine.setPeers(peers({ ...b, candidates: b.candidates.map((c) => (c.kind === 'reflexive' ? { ...c, ...moved } : c)) }));
    await timers.advance(K.PUNCH_SETTLE_MS + 100);
    expect(engine.status()[0]!.phase).toBe('direct');
    expect(engine.desiredEndpoints().get(b.publicKey)).toBe(ep(moved));
    engine.stop();
  });

  it('tells each change of a peer\'s phase or endpoint once, as it happens, the held endpoint when given', async () => {
    const timers = new FakeTimers();
    const checks = new FakeChecks(timers);
    const told: string[] = [];
    const engine = new Engine({
      selfNode: 'z', prober: new FakeProber(timers), checks, relay: new FakeRelay(), punchTtl: TTL, timers, onChange: () => {},
      onPath: (p) => told.push(`${p.node} ${p.phase} ${p.endpoint ?? '-'} @${p.since}`),
    });
    checks.reachable.add(bReflexive);
    engine.setPeers(peers(b));
    await timers.advance(K.PUNCH_SETTLE_MS + K.FIRST_ENDPOINT_HOLD_MS + 500);
    const direct = engine.status()[0]!.since;
    expect(told).toEqual(['b punching - @0', `b checking - @${K.PUNCH_SETTLE_MS}`, `b direct - @${direct}`, `b direct ${bReflexive} @${direct}`]);
    await timers.advance(5_000);
    expect(told).toHaveLength(4);
    engine.stop();
  });

  it('stops ticking on stop()', async () => {
    const { timers, prober, engine } = setup();
    engine.setPeers(peers(b));
    engine.stop();
    await timers.advance(K.PUNCH_SETTLE_MS * 2);
    expect(prober.punches.map((p) => p.at)).toEqual([0, 0]);
    expect(timers.pending).toBe(0);
  });
});

describe('peerCandidates', () => {
  it('takes local and reflexive as direct, without duplicates, and the relay apart', () => {
    const c = peerCandidates({
      candidates: [
        { kind: 'local', address: '198.51.100.2', port: 51820 },
        { kind: 'reflexive', address: '198.51.100.2', port: 51820 },
        { kind: 'relay', address: '192.0.2.10', port: 50001 },
      ],
      nat: { mapping: 'endpoint-independent' },
    });
    expect(c.direct).toEqual([{ address: '198.51.100.2', port: 51820 }]);
    expect(c.relay).toEqual({ address: '192.0.2.10', port: 50001 });
  });

  it('leaves out the reflexive candidate of a peer whose NAT maps per destination', () => {
    const r = record('b', 2, { nat: { mapping: 'endpoint-dependent' } });
    expect(peerCandidates(r).direct.map(ep)).toEqual(['192.168.2.2:51820']);
  });

  it('changes its fingerprint exactly when a candidate changes', () => {
    const r = record('b', 2);
    expect(peerCandidates(r).fingerprint).toBe(peerCandidates(record('b', 2, { candidates: r.candidates, nat: r.nat, updatedAt: '2026-01-01T00:00:00.000Z' })).fingerprint);
    expect(peerCandidates(r).fingerprint).not.toBe(peerCandidates({ ...r, candidates: r.candidates.slice(0, 2) }).fingerprint);
  });
});
