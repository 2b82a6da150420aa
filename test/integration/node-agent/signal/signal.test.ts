// Signalling through a real etcd (test/helpers/etcd.ts): agents publish their records
// under leases and watch each other's; joins, changes and departures converge, etcd
// outages and compaction are survived, and nothing secret reaches the store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchRange, type RangeWatch } from '../../../../lib/etcd/watch.js';
import { NodeRecordError, RecordSecretError } from '../../../../node-agent/signal/errors.js';
import { Publisher } from '../../../../node-agent/signal/publisher.js';
import { EtcdServer } from '../../../helpers/etcd.js';
import { waitFor } from '../../../helpers/sh.js';
import { keyPair, recordOf } from '../../../unit/node-agent/signal/records.js';
import { Agents } from './agents.js';

let etcd: EtcdServer;
let agents: Agents;

beforeEach(async () => {
  etcd = await EtcdServer.start();
  agents = new Agents(etcd);
});
afterEach(async () => {
  await agents.destroy();
  await etcd.destroy();
});

const nodesOf = (peers: ReadonlyMap<string, unknown>) => [...peers.keys()];

describe('two agents', () => {
  it('see each other within a second of publishing', async () => {
    const started = Date.now();
    const recB = recordOf('node-b', 2);
    const a = agents.start('node-a', { record: recordOf('node-a', 1) });
    const b = agents.start('node-b', { record: recB });
    await waitFor('each agent to see the other', () => a.latest().has('node-b') && b.latest().has('node-a'), 5_000, 10);
    const seen = Math.max(a.emissions.at(-1)!.at, b.emissions.at(-1)!.at) - started;
    console.log(`join -> seen by the peer: ${seen} ms`);
    expect(seen).toBeLessThan(1_000);
    expect(nodesOf(a.latest())).toEqual(['node-b']);
    expect(a.latest().get('node-b')).toMatchObject(recB);
    expect(a.publisher!.status()).toMatchObject({ published: true, writes: 1, connection: { state: 'connected' } });
  });

  it('propagate a changed candidate with one write, and write nothing for an unchanged record', async () => {
    const recB = recordOf('node-b', 2);
    const a = agents.start('node-a', { record: recordOf('node-a', 1) });
    const b = agents.start('node-b', { record: recB });
    await waitFor('a to see b', () => a.latest().has('node-b'));
    const moved = { ...recB, candidates: [...recB.candidates.slice(0, 1), { kind: 'reflexive' as const, address: '203.0.113.99', port: 41234 }] };
    const changedAt = Date.now();
    b.publisher!.update(moved);
    await waitFor('a to see b\'s new reflexive address', () => a.latest().get('node-b')?.candidates[1]?.address === '203.0.113.99', 5_000, 10);
    console.log(`candidate change -> seen by the peer: ${a.emissions.at(-1)!.at - changedAt} ms`);
    expect(b.publisher!.status().writes).toBe(2);
    const emissions = a.emissions.length;
    b.publisher!.update({ ...moved, candidates: moved.candidates.map((c) => ({ ...c })) });
    b.publisher!.update(moved);
    await waitFor('b to settle', () => b.publisher!.status().published);
    expect(b.publisher!.status().writes).toBe(2);
    expect(a.emissions.length).toBe(emissions);
  });
});

describe('a node going away', () => {
  it('withdraw() deletes the record at once and peers drop the node', async () => {
    const a = agents.start('node-a', { record: recordOf('node-a', 1) });
    const b = agents.start('node-b', { record: recordOf('node-b', 2) });
    await waitFor('b to see a', () => b.latest().has('node-a'));
    const leftAt = Date.now();
    await a.publisher!.withdraw();
    await waitFor('b to drop a', () => !b.latest().has('node-a'), 5_000, 10);
    console.log(`withdraw -> dropped by the peer: ${b.emissions.at(-1)!.at - leftAt} ms`);
    expect((await etcd.dump('/warren/agents/')).has('/warren/agents/node-a')).toBe(false);
  });

  it('a stopped agent\'s record expires with its lease, and peers drop the node', async () => {
    const a = agents.start('node-a', { record: recordOf('node-a', 1), ttlSeconds: 2 });
    const b = agents.start('node-b', { record: recordOf('node-b', 2) });
    await waitFor('b to see a', () => b.latest().has('node-a'));
    const stoppedAt = Date.now();
    await a.publisher!.stop();
    expect(b.latest().has('node-a')).toBe(true);
    await waitFor('b to drop a after the TTL', () => !b.latest().has('node-a'), 10_000);
    const gone = b.emissions.at(-1)!.at - stoppedAt;
    console.log(`stop with TTL 2 s -> dropped by the peer: ${gone} ms`);
    expect(gone).toBeGreaterThanOrEqual(1_000);
  });

  it('a restart within the TTL re-publishes without the peers ever seeing the node go', async () => {
    const recA = recordOf('node-a', 1);
    const a = agents.start('node-a', { record: recA, ttlSeconds: 2 });
    const b = agents.start('node-b', { record: recordOf('node-b', 2) });
    await waitFor('b to see a', () => b.latest().has('node-a'));
    const emissions = b.emissions.length;
    const oldLease = BigInt(a.publisher!.status().leaseId!).toString(16);
    await a.publisher!.stop();
    const restarted = agents.publisher(agents.newStore(), recA, 2);
    restarted.start();
    await waitFor('the new publisher to publish', () => restarted.status().published);
    // Had the old lease still held the record, its expiry would have deleted it.
    await waitFor('the old lease to run out', async () => !(await etcd.etcdctl(['lease', 'list'])).includes(oldLease), 10_000, 100);
    await restarted.stop();
    expect(b.latest().has('node-a')).toBe(true);
    expect(b.emissions.length).toBe(emissions);
  });
});

describe('etcd outage', () => {
  it('keeps the last peer set while etcd is down, then converges on changes made after it came back', async () => {
    // A 3 s TTL: a keep-alive every second, so the publisher notices the outage soon.
    const a = agents.start('node-a', { record: recordOf('node-a', 1), ttlSeconds: 3 });
    const recB = recordOf('node-b', 2);
    const b = agents.start('node-b', { record: recB });
    await waitFor('a to see b', () => a.latest().has('node-b'));
    const before = a.latest();

    await etcd.stop();
    const stoppedAt = Date.now();
    await waitFor('a\'s watcher and publisher to report retrying', () =>
      a.watcher.status().connection.state === 'retrying' && a.publisher!.status().connection.state === 'retrying', 20_000);
    const down = a.watcher.status().connection;
    expect(down.state === 'retrying' && down.since.getTime()).toBeGreaterThanOrEqual(stoppedAt - 1_000);
    expect(a.latest()).toBe(before);

    await etcd.resume();
    const resumedAt = Date.now();
    // A third client changes the cluster right away, likely before a and b reconnect.
    const third = agents.newStore();
    const c = agents.publisher(third, recordOf('node-c', 3));
    c.start();
    await waitFor('c to be published', () => c.status().published, 10_000);
    b.publisher!.update({ ...recB, listenPort: 51999 });

    await waitFor('a\'s watcher to reconnect', () => a.watcher.status().connection.state === 'connected', 20_000, 10);
    console.log(`etcd resumed -> watcher connected: ${Date.now() - resumedAt} ms`);
    await waitFor('a to see c and b\'s new port', () => a.latest().has('node-c') && a.latest().get('node-b')?.listenPort === 51999, 20_000, 10);
    console.log(`etcd resumed -> converged: ${a.emissions.at(-1)!.at - resumedAt} ms`);
    await waitFor('a\'s publisher to reconnect', () => a.publisher!.status().connection.state === 'connected', 20_000);
    expect(nodesOf(a.latest())).toEqual(['node-b', 'node-c']);
    expect(a.watcher.status().snapshots).toBe(1);
    // etcd renews leases when it starts again: a's record outlived the outage.
    await waitFor('b to see c', () => b.latest().has('node-c'), 20_000);
    const sinceA = b.emissions.findIndex((e) => e.peers.has('node-a'));
    expect(b.emissions.slice(sinceA).every((e) => e.peers.has('node-a'))).toBe(true);
    await c.stop();
  });

  it('reads everything again when the revision to resume from is compacted', async () => {
    let first = true;
    const writer = agents.newStore();
    const a = agents.start('node-a', {
      watcher: {
        // Between the first range read and its watch: a change, then compaction past it.
        watch: (request, handlers) => {
          if (!first) return watchRange(writer, request, handlers);
          first = false;
          let inner: RangeWatch | undefined;
          let closed = false;
          const ended = (async () => {
            await agents.allocate(writer, recordOf('node-x', 9));
            await etcd.etcdctl(['put', '/warren/agents/node-x', JSON.stringify({ ...recordOf('node-x', 9), updatedAt: new Date().toISOString() })]);
            await etcd.etcdctl(['put', '/warren/unrelated', 'x']);
            const rev = JSON.parse(await etcd.etcdctl(['get', '/warren/unrelated', '-w', 'json'])) as { header: { revision: number } };
            await etcd.etcdctl(['compact', String(rev.header.revision)]);
            if (closed) return;
            inner = watchRange(writer, request, handlers);
            await inner.ended;
          })();
          return { ended, close: () => { closed = true; inner?.close(); } };
        },
      },
    });
    await waitFor('a to see node-x', () => a.latest().has('node-x'), 10_000);
    expect(a.watcher.status().snapshots).toBe(2);
    expect(a.errors.map((e) => (e as Error).name)).toEqual(['WatchCompactedError']);
    expect(nodesOf(a.latest())).toEqual(['node-x']);
  });
});

describe('many nodes', () => {
  it('50 nodes publishing at once make a bounded number of emissions, the last with all 50', async () => {
    const observer = agents.start('observer');
    await waitFor('the observer\'s first (empty) emission', () => observer.emissions.length === 1);
    const shared = agents.newStore();
    const publishers: Publisher[] = [];
    for (let i = 0; i < 50; i++) publishers.push(agents.publisher(shared, recordOf(`node-${i}`, i + 1)));
    const started = Date.now();
    publishers.forEach((p) => p.start());
    try {
      await waitFor('all 50 published', () => publishers.every((p) => p.status().published), 20_000, 10);
      const published = Date.now() - started;
      await waitFor('the observer to see all 50', () => observer.latest().size === 50, 10_000, 10);
      const emissions = observer.emissions.length - 1;
      console.log(`50 nodes: published in ${published} ms, seen after ${observer.emissions.at(-1)!.at - started} ms, ${emissions} emission(s)`);
      // One per EMIT_MAX_WAIT_MS of publishing at most, plus the last.
      expect(emissions).toBeLessThanOrEqual(Math.ceil(published / 1_000) + 1);
      expect(emissions).toBeLessThanOrEqual(5);
    } finally {
      await Promise.all(publishers.map((p) => p.stop()));
    }
  });
});

describe('what is in etcd', () => {
  it('a corrupt record is skipped and reported, the others are handled', async () => {
    await etcd.etcdctl(['put', '/warren/agents/node-broken', '{not json']);
    const badKey = { ...recordOf('node-badkey', 7), publicKey: 'short', updatedAt: new Date().toISOString() };
    await etcd.etcdctl(['put', '/warren/agents/node-badkey', JSON.stringify(badKey)]);
    const a = agents.start('node-a', { record: recordOf('node-a', 1) });
    agents.start('node-b', { record: recordOf('node-b', 2) });
    await waitFor('a to see b', () => a.latest().has('node-b'));
    // One more arriving through the watch rather than the range read.
    const badPort = { ...recordOf('node-badport', 8), listenPort: 70000, updatedAt: new Date().toISOString() };
    await etcd.etcdctl(['put', '/warren/agents/node-badport', JSON.stringify(badPort)]);
    await waitFor('three reports', () => a.invalid.length === 3);
    expect(a.invalid.every((e) => e instanceof NodeRecordError)).toBe(true);
    expect(a.invalid.map((e) => e.message)).toEqual([
      'etcd key /warren/agents/node-badkey: field publicKey "short" is not a WireGuard public key (base64 of 32 bytes, 44 characters)',
      expect.stringMatching(/^etcd key \/warren\/agents\/node-broken: field \(whole record\) is not JSON: /),
      'etcd key /warren/agents/node-badport: field listenPort is 70000, not a UDP port (1-65535)',
    ]);
    expect(nodesOf(a.latest())).toEqual(['node-b']);
    expect(a.watcher.status().invalid.sort()).toEqual(['/warren/agents/node-badkey', '/warren/agents/node-badport', '/warren/agents/node-broken']);
  });

  it('refuses a record that claims another node\'s pod subnet: the victim stays the peer that gets it', async () => {
    const a = agents.start('node-a', { record: recordOf('node-a', 1) });
    agents.start('node-b', { record: recordOf('node-b', 2) });
    await waitFor('a to see b', () => a.latest().has('node-b'));
    // node-c holds its own allocation, and publishes node-b's subnet as its own.
    await agents.allocate(a.store, recordOf('node-c', 3));
    const thief = { ...recordOf('node-c', 3), podSubnet: recordOf('node-b', 2).podSubnet, updatedAt: new Date().toISOString() };
    await etcd.etcdctl(['put', '/warren/agents/node-c', JSON.stringify(thief)]);
    await waitFor('the refusal', () => a.invalid.length === 1);
    expect(a.invalid[0]!.message).toBe('etcd key /warren/agents/node-c: field podSubnet is 10.244.2.0/24, but node-c\'s allocation is 10.244.3.0/24');
    expect(nodesOf(a.latest())).toEqual(['node-b']);
    expect(a.latest().get('node-b')!.podSubnet).toBe('10.244.2.0/24');
  });

  it('holds no private key, and a record with a field named like one is never written', async () => {
    const pair = keyPair();
    const a = agents.start('node-a', { record: recordOf('node-a', 1, pair.publicKey) });
    await waitFor('a published', () => a.publisher!.status().published);
    const withSecret = { ...recordOf('node-s', 5, pair.publicKey), privateKey: pair.privateKey };
    expect(() => agents.publisher(a.store, withSecret)).toThrow(RecordSecretError);
    expect(() => a.publisher!.update({ ...recordOf('node-a', 1, pair.publicKey), nat: { mapping: 'unknown', wgPrivateKey: pair.privateKey } as never }))
      .toThrow(/field nat.wgPrivateKey is named like a secret/);
    const stored = await etcd.dump('/warren/agents/');
    expect([...stored.keys()]).toEqual(['/warren/agents/node-a']);
    const value = stored.get('/warren/agents/node-a')!;
    expect(value).toContain(pair.publicKey);
    expect(value).not.toContain(pair.privateKey);
    expect(Object.keys(JSON.parse(value) as object).sort()).toEqual(
      ['candidates', 'hostAddress', 'listenPort', 'nat', 'node', 'podSubnet', 'publicKey', 'updatedAt']);
  });
});
