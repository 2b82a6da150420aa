// The watcher's view of <prefix>/agents/ and the peer set derived from it. Pure. Each
// stored value is parsed once, when it arrives, so a corrupt record is reported once
// per value rather than at every emission, and never hides the valid records beside it.
import type { WatchEvent } from '../../lib/etcd/watch.js';
import { NodeRecordError } from './errors.js';
import type { AgentKeys } from './keys.js';
import { contentKey, parseNodeRecord, type NodeRecord } from './record.js';

export type Entry = { value: string; record: NodeRecord } | { value: string; error: NodeRecordError };

export interface Applied {
  entries: Map<string, Entry>;
  /** Records refused by this change (new values only). */
  invalid: NodeRecordError[];
}

/** The entry for a stored value; the previous entry is reused when the value did not change. */
function entryFor(keys: AgentKeys, key: string, value: string, previous: Entry | undefined): Entry {
  if (previous?.value === value) return previous;
  const node = keys.nodeOf(key) ?? '';
  try {
    return { value, record: parseNodeRecord(key, value, node) };
  } catch (err) {
    if (err instanceof NodeRecordError) return { value, error: err };
    throw err;
  }
}

/** Replaces the whole view with a range read's key-values; the node itself is left out. */
export function fromSnapshot(keys: AgentKeys, self: string, kvs: readonly { key: string; value: string }[],
  previous: ReadonlyMap<string, Entry>): Applied {
  const entries = new Map<string, Entry>();
  const invalid: NodeRecordError[] = [];
  for (const { key, value } of kvs) {
    if (keys.nodeOf(key) === self) continue;
    const old = previous.get(key);
    const e = entryFor(keys, key, value, old);
    if ('error' in e && e !== old) invalid.push(e.error);
    entries.set(key, e);
  }
  return { entries, invalid };
}

/** The view after watch events, in order; the node itself is left out. */
export function withEvents(keys: AgentKeys, self: string, events: readonly WatchEvent[], previous: ReadonlyMap<string, Entry>): Applied {
  const entries = new Map(previous);
  const invalid: NodeRecordError[] = [];
  for (const ev of events) {
    if (keys.nodeOf(ev.key) === self) continue;
    if (ev.type === 'delete') {
      entries.delete(ev.key);
      continue;
    }
    const old = entries.get(ev.key);
    const e = entryFor(keys, ev.key, ev.value, old);
    if ('error' in e && e !== old) invalid.push(e.error);
    entries.set(ev.key, e);
  }
  return { entries, invalid };
}

/**
 * The peers to have tunnels to: every valid record. A node whose current record is
 * corrupt is left out rather than kept at its last good value: a stale endpoint or key
 * is not better than none, and the report says why the peer went.
 */
export function peerSet(entries: ReadonlyMap<string, Entry>): Map<string, NodeRecord> {
  const peers = new Map<string, NodeRecord>();
  for (const e of entries.values()) if ('record' in e) peers.set(e.record.node, e.record);
  return new Map([...peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Same nodes with the same content (updatedAt aside): nothing for the overlay to change. */
export function samePeers(a: ReadonlyMap<string, NodeRecord>, b: ReadonlyMap<string, NodeRecord>): boolean {
  if (a.size !== b.size) return false;
  for (const [node, r] of a) {
    const other = b.get(node);
    if (!other || contentKey(other) !== contentKey(r)) return false;
  }
  return true;
}
