// The watcher's recovery decisions on a fake clock with a scripted store: resume from
// the last revision after an outage, read again after compaction or a rewound store,
// keep the last peer set meanwhile. The real etcd is in test/integration/node-agent/signal/.
import type { IRangeRequest, IRangeResponse } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../../../lib/etcd/errors.js';
import type { EtcdStore } from '../../../../lib/etcd/store.js';
import { WatchCompactedError, type WatchEvent, type WatchHandlers, type WatchRangeRequest } from '../../../../lib/etcd/watch.js';
import { agentKeys } from '../../../../node-agent/signal/keys.js';
import { PeerWatcher, type PeerSet } from '../../../../node-agent/signal/watcher.js';
import { FakeTimers } from '../nat/fake-net.js';
import { allocationOf, recordOf } from './records.js';

const keys = agentKeys();
const value = (node: string, i: number, extra: object = {}) =>
  JSON.stringify({ ...recordOf(node, i), updatedAt: '2025-03-01T10:00:00.000Z', ...extra });

interface OpenWatch {
  request: WatchRangeRequest;
  /** Deliver as lib/etcd/watch.ts does: a handler that throws ends the watch with that error. */
  created(revision: string): void;
  events(events: WatchEvent[]): void;
  fail(err: Error): void;
}

class FakeStore {
  kvs = new Map<string, string>();
  revision = 10;
  ranges: IRangeRequest[] = [];
  watches: OpenWatch[] = [];

  range = async (r: IRangeRequest): Promise<IRangeResponse> => {
    this.ranges.push(r);
    return {
      header: { revision: String(this.revision) }, more: false, count: String(this.kvs.size),
      kvs: [...this.kvs].map(([k, v]) => ({ key: Buffer.from(k), value: Buffer.from(v), mod_revision: '1' })),
    } as unknown as IRangeResponse;
  };

  watch = (request: WatchRangeRequest, handlers: WatchHandlers) => {
    let fail: (err: Error) => void = () => undefined;
    let close: () => void = () => undefined;
    const ended = new Promise<void>((resolve, reject) => {
      fail = reject;
      close = resolve;
    });
    const deliver = (f: () => void) => {
      try {
        f();
      } catch (err) {
        fail(err as Error);
      }
    };
    this.watches.push({
      request, fail,
      created: (r) => deliver(() => handlers.onCreated(r)),
      events: (e) => deliver(() => handlers.onEvents(e)),
    });
    return { ended, close };
  };
}

let watcher: PeerWatcher | undefined;
afterEach(async () => {
  await watcher?.stop();
  watcher = undefined;
});

function setup() {
  const timers = new FakeTimers();
  const store = new FakeStore();
  // Every node's allocation is there before its record, as configgen runs before the agent.
  for (const [node, i] of [['node-b', 2], ['node-c', 3], ['node-d', 4]] as const) store.kvs.set(allocationOf(node, i).key, allocationOf(node, i).value);
  store.kvs.set(keys.agent('node-b'), value('node-b', 2));
  const emitted: PeerSet[] = [];
  const errors: unknown[] = [];
  const invalid: string[] = [];
  watcher = new PeerWatcher({
    store: undefined as unknown as EtcdStore, keys, self: 'node-a', timers,
    onPeers: (p) => emitted.push(p), onError: (e) => errors.push(e), onInvalid: (e) => invalid.push(e.message),
    backoff: { initialMs: 200, maxMs: 5_000, random: () => 0 },
    range: store.range, watch: store.watch,
  });
  watcher.start();
  return { timers, store, emitted, errors, invalid, w: watcher };
}

const unreachable = () => new StoreUnavailableError(['http://127.0.0.1:1'], 'unreachable (ECONNREFUSED)');

describe('PeerWatcher', () => {
  it('watches from the revision after its range read, and emits once per quiet spell', async () => {
    const { timers, store, emitted } = setup();
    await timers.advance(1);
    expect(store.watches[0]!.request).toEqual({ key: '/warren/', rangeEnd: '/warren0', startRevision: '11' });
    store.watches[0]!.created('10');
    store.watches[0]!.events([{ type: 'put', key: keys.agent('node-c'), value: value('node-c', 3), modRevision: '11' }]);
    store.watches[0]!.events([{ type: 'put', key: keys.agent('node-d'), value: value('node-d', 4), modRevision: '12' }]);
    await timers.advance(200);
    expect(emitted.map((p) => [...p.keys()])).toEqual([['node-b', 'node-c', 'node-d']]);
  });

  it('leaves out a record that claims another node\'s subnet, says so once, and lists it in its status', async () => {
    const { timers, store, emitted, invalid, w } = setup();
    await timers.advance(1);
    store.watches[0]!.created('10');
    store.watches[0]!.events([{ type: 'put', key: keys.agent('node-c'), value: value('node-c', 3, { podSubnet: '10.244.2.0/24' }), modRevision: '11' }]);
    await timers.advance(200);
    // The same refused record re-published (a new updatedAt): not reported again.
    store.watches[0]!.events([{ type: 'put', key: keys.agent('node-c'), value: value('node-c', 3, { podSubnet: '10.244.2.0/24', updatedAt: '2025-03-01T10:01:00.000Z' }), modRevision: '12' }]);
    await timers.advance(200);
    expect(emitted.map((p) => [...p.keys()])).toEqual([['node-b']]);
    expect(invalid).toEqual(['etcd key /warren/agents/node-c: field podSubnet is 10.244.2.0/24, but node-c\'s allocation is 10.244.3.0/24']);
    expect(w.status().invalid).toEqual(['/warren/agents/node-c']);
  });

  it('keeps the last peer set through an outage and resumes from the last revision seen', async () => {
    const { timers, store, emitted, w } = setup();
    await timers.advance(1);
    store.watches[0]!.events([{ type: 'delete', key: keys.agent('node-b'), value: '', modRevision: '14' }]);
    await timers.advance(200);
    store.watches[0]!.fail(unreachable());
    await timers.advance(50);
    expect(w.status().connection).toMatchObject({ state: 'retrying', attempts: 1 });
    await timers.advance(50);
    expect(store.watches[1]!.request.startRevision).toBe('15');
    store.watches[1]!.fail(unreachable());
    await timers.advance(200);
    store.watches[2]!.created('20');
    expect(w.status().connection.state).toBe('connected');
    expect(store.ranges).toHaveLength(1);
    expect(emitted).toHaveLength(1);
    expect(w.peers()?.size).toBe(0);
  });

  it('reads everything again, at once, when the history to resume from is compacted', async () => {
    const { timers, store, errors } = setup();
    await timers.advance(1);
    store.kvs.set(keys.agent('node-c'), value('node-c', 3));
    store.revision = 30;
    store.watches[0]!.fail(new WatchCompactedError('/warren/agents/', '11', '25'));
    await timers.advance(0);
    expect(store.ranges).toHaveLength(2);
    expect(store.watches[1]!.request.startRevision).toBe('31');
    expect(errors.map((e) => (e as Error).name)).toEqual(['WatchCompactedError']);
  });

  it('reads everything again when etcd answers with an older revision (restored from a backup)', async () => {
    const { timers, store, errors, emitted } = setup();
    await timers.advance(1);
    store.watches[0]!.fail(unreachable());
    await timers.advance(100);
    store.revision = 4;
    store.kvs.set(keys.agent('node-b'), value('node-b', 2, { listenPort: 4000 }));
    store.watches[1]!.created('4');
    await timers.advance(200);
    expect(errors.map((e) => (e as Error).name)).toEqual(['StoreRewoundError']);
    expect(store.watches[2]!.request.startRevision).toBe('5');
    expect(emitted.at(-1)!.get('node-b')!.listenPort).toBe(4000);
  });
});
