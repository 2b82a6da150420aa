import { describe, expect, it } from 'vitest';
import { agentKeys } from '../../../../node-agent/signal/keys.js';
import { fromSnapshot, peerSet, samePeers, withEvents } from '../../../../node-agent/signal/peer-set.js';
import { keyPair, recordOf } from './records.js';

const keys = agentKeys();
const [SELF, B, C] = [keyPair(), keyPair(), keyPair()].map((k) => k.publicKey) as [string, string, string];
const AT = '2025-03-01T10:00:00.000Z';
const kv = (node: string, i: number, key: string, extra: object = {}) =>
  ({ key: keys.agent(node), value: JSON.stringify({ ...recordOf(node, i, key), updatedAt: AT, ...extra }) });

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
