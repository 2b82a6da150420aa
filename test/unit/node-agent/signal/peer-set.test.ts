import { describe, expect, it } from 'vitest';
import { agentKeys } from '../../../../node-agent/signal/keys.js';
import { fromSnapshot, judgeRecords, peerSet as judged, samePeers, withEvents, type Entry } from '../../../../node-agent/signal/peer-set.js';
import { allocationOf, keyPair, recordOf } from './records.js';

const keys = agentKeys();
const [SELF, B, C] = [keyPair(), keyPair(), keyPair()].map((k) => k.publicKey) as [string, string, string];
const AT = '2025-03-01T10:00:00.000Z';
const kv = (node: string, i: number, key: string, extra: object = {}) =>
  ({ key: keys.agent(node), value: JSON.stringify({ ...recordOf(node, i, key), updatedAt: AT, ...extra }) });
// The allocations of node-b and node-c, as configgen recorded them: the records below agree with them.
const ALLOCATED = fromSnapshot(keys, 'self', [allocationOf('node-b', 2), allocationOf('node-c', 3)], new Map()).entries;
const peerSet = (entries: ReadonlyMap<string, Entry>) => judged(keys, new Map([...ALLOCATED, ...entries]));

describe('fromSnapshot and withEvents', () => {
  it('leave the node itself out and keep valid records beside a corrupt one', () => {
    const { entries, invalid } = fromSnapshot(keys, 'self', [kv('self', 0, SELF), kv('node-b', 2, B), { key: keys.agent('node-c'), value: 'garbage' }], new Map());
    expect([...peerSet(entries).keys()]).toEqual(['node-b']);
    expect(invalid.map((e) => e.where)).toEqual(['etcd key /warren/agents/node-c']);
  });

  it('report a corrupt value once, not again when a later read finds it unchanged', () => {
    const first = fromSnapshot(keys, 'self', [{ key: keys.agent('node-c'), value: 'garbage' }], new Map());
    expect(fromSnapshot(keys, 'self', [{ key: keys.agent('node-c'), value: 'garbage' }], first.entries).invalid).toEqual([]);
    const ev = withEvents(keys, 'self', [{ type: 'put', key: keys.agent('node-c'), value: 'garbage', modRevision: '9' }], first.entries);
    expect(ev.invalid).toEqual([]);
    const other = withEvents(keys, 'self', [{ type: 'put', key: keys.agent('node-c'), value: '{}', modRevision: '10' }], first.entries);
    expect(other.invalid).toHaveLength(1);
  });

  it('apply puts and deletes in order; a node whose record turns corrupt leaves the peer set', () => {
    const start = fromSnapshot(keys, 'self', [kv('node-b', 2, B)], new Map()).entries;
    const c = kv('node-c', 3, C);
    const after = withEvents(keys, 'self', [
      { type: 'put', key: c.key, value: c.value, modRevision: '5' },
      { type: 'put', key: keys.agent('node-b'), value: '{"node":"node-b"}', modRevision: '6' },
      { type: 'delete', key: keys.agent('self'), value: '', modRevision: '7' },
    ], start);
    expect([...peerSet(after.entries).keys()]).toEqual(['node-c']);
    expect(after.invalid[0]!.message).toBe('etcd key /warren/agents/node-b: field publicKey is missing');
    const gone = withEvents(keys, 'self', [{ type: 'delete', key: c.key, value: '', modRevision: '8' }], after.entries);
    expect(peerSet(gone.entries).size).toBe(0);
  });
});

describe('samePeers', () => {
  it('is true for a peer re-published with the same content at a later time', () => {
    const a = peerSet(fromSnapshot(keys, 'self', [kv('node-b', 2, B)], new Map()).entries);
    const again = peerSet(fromSnapshot(keys, 'self', [kv('node-b', 2, B, { updatedAt: '2025-03-01T10:05:00.000Z' })], new Map()).entries);
    const moved = peerSet(fromSnapshot(keys, 'self', [kv('node-b', 2, B, { listenPort: 1 })], new Map()).entries);
    expect(samePeers(a, again)).toBe(true);
    expect(samePeers(a, moved)).toBe(false);
    expect(samePeers(a, new Map())).toBe(false);
  });
});

describe('judgeRecords', () => {
  const b = kv('node-b', 2, B);
  it('takes a record whose pod subnet and host address its allocation gives', () => {
    const { entries } = fromSnapshot(keys, 'self', [allocationOf('node-b', 2), b], new Map());
    const { peers, refused } = judgeRecords(keys, entries);
    expect([...peers.keys()]).toEqual(['node-b']);
    expect(refused.size).toBe(0);
  });

  it('refuses a record claiming another node\'s pod subnet or host address, or with no allocation at all, and keeps the victim', () => {
    const thief = kv('node-c', 3, C, { podSubnet: '10.244.2.0/24' });
    const { entries } = fromSnapshot(keys, 'self', [allocationOf('node-b', 2), allocationOf('node-c', 3), b, thief], new Map());
    let judged = judgeRecords(keys, entries);
    expect([...judged.peers.keys()]).toEqual(['node-b']);
    expect(judged.refused.get(keys.agent('node-c'))!.message)
      .toBe('etcd key /warren/agents/node-c: field podSubnet is 10.244.2.0/24, but node-c\'s allocation is 10.244.3.0/24');

    const address = kv('node-c', 3, C, { hostAddress: '10.10.0.3' });
    judged = judgeRecords(keys, fromSnapshot(keys, 'self', [allocationOf('node-b', 2), allocationOf('node-c', 3), b, address], new Map()).entries);
    expect(judged.refused.get(keys.agent('node-c'))!.message).toBe('etcd key /warren/agents/node-c: field hostAddress is 10.10.0.3, but node-c\'s allocation is 10.10.0.4');

    const stranger = kv('node-x', 9, C);
    judged = judgeRecords(keys, fromSnapshot(keys, 'self', [allocationOf('node-b', 2), b, stranger], new Map()).entries);
    expect([...judged.peers.keys()]).toEqual(['node-b']);
    expect(judged.refused.get(keys.agent('node-x'))!.message).toBe('etcd key /warren/agents/node-x: field podSubnet is 10.244.9.0/24, but node node-x has no allocation (etcd key /warren/nodes/node-x)');
  });

  it('drops a peer whose allocation is released, and reports a corrupt allocation once', () => {
    const start = fromSnapshot(keys, 'self', [allocationOf('node-b', 2), b], new Map());
    const released = withEvents(keys, 'self', [{ type: 'delete', key: allocationOf('node-b', 2).key, value: '', modRevision: '5' }], start.entries);
    expect(judgeRecords(keys, released.entries).peers.size).toBe(0);
    const corrupt = withEvents(keys, 'self', [{ type: 'put', key: allocationOf('node-b', 2).key, value: '{"node":"node-z"}', modRevision: '6' }], start.entries);
    expect(corrupt.invalid.map((e) => e.message)).toEqual(['etcd key /warren/nodes/node-b: field (allocation) etcd key /warren/nodes/node-b: field node is "node-z", not "node-b"']);
    expect(judgeRecords(keys, corrupt.entries).peers.size).toBe(0);
  });

  it('passes over the other keys under the prefix (pool, subnets, hosts, the gateway election)', () => {
    const { entries, invalid } = fromSnapshot(keys, 'self', [{ key: '/warren/pool', value: 'x' }, { key: '/warren/subnets/002', value: 'node-b' },
      { key: '/warren/hosts/10.10.0.3', value: 'node-b' }, { key: '/warren/gateway/active', value: 'node-b' }, allocationOf('node-b', 2), b], new Map());
    expect(invalid).toEqual([]);
    expect([...judgeRecords(keys, entries).peers.keys()]).toEqual(['node-b']);
  });
});
