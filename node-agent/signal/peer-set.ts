// The watcher's view of <prefix>/agents/ and <prefix>/nodes/, and the peer set derived
// from it. Pure. Each stored value is parsed once, when it arrives, so a corrupt record is
// reported once per value rather than at every emission, and never hides the valid
// records beside it.
//
// A node publishes its own record, so what it says of its pod subnet and host address is
// a claim: a peer is taken only where the allocation configgen recorded for it agrees
// (with etcd authentication on, a node cannot write allocations), so that no node can
// draw another's traffic by naming its subnet or address.
import { parseAllocationClaim, type AllocationClaim } from '../../lib/allocation-record.js';
import type { WatchEvent } from '../../lib/etcd/watch.js';
import { NodeRecordError } from './errors.js';
import type { AgentKeys } from './keys.js';
import { contentKey, parseNodeRecord, type NodeRecord } from './record.js';

export type Entry =
  | { value: string; record: NodeRecord }
  | { value: string; allocation: AllocationClaim }
  | { value: string; error: NodeRecordError };

export interface Applied {
  entries: Map<string, Entry>;
  /** Values refused by this change (new values only). */
  invalid: NodeRecordError[];
}

/** The entry for a stored value (undefined for keys the view passes over); the previous entry is reused when the value did not change. */
function entryFor(keys: AgentKeys, key: string, value: string, previous: Entry | undefined): Entry | undefined {
  if (previous?.value === value) return previous;
  const recordOf = keys.nodeOf(key);
  if (recordOf !== undefined) {
    try {
      return { value, record: parseNodeRecord(key, value, recordOf) };
    } catch (err) {
      if (err instanceof NodeRecordError) return { value, error: err };
      throw err;
    }
  }
  const allocationOf = keys.allocationOf(key);
  if (allocationOf === undefined) return undefined;
  const claim = parseAllocationClaim(key, value, allocationOf);
  return typeof claim === 'string' ? { value, error: new NodeRecordError(`etcd key ${key}`, '(allocation)', claim) } : { value, allocation: claim };
}

const isSelf = (keys: AgentKeys, self: string, key: string) => keys.nodeOf(key) === self || keys.allocationOf(key) === self;

/** Replaces the whole view with a range read's key-values; the node itself is left out. */
export function fromSnapshot(keys: AgentKeys, self: string, kvs: readonly { key: string; value: string }[],
  previous: ReadonlyMap<string, Entry>): Applied {
  const entries = new Map<string, Entry>();
  const invalid: NodeRecordError[] = [];
  for (const { key, value } of kvs) {
    if (isSelf(keys, self, key)) continue;
    const old = previous.get(key);
    const e = entryFor(keys, key, value, old);
    if (!e) continue;
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
    if (isSelf(keys, self, ev.key)) continue;
    if (ev.type === 'delete') {
      entries.delete(ev.key);
      continue;
    }
    const old = entries.get(ev.key);
    const e = entryFor(keys, ev.key, ev.value, old);
    if (!e) continue;
    if ('error' in e && e !== old) invalid.push(e.error);
    entries.set(ev.key, e);
  }
  return { entries, invalid };
}

/** Valid records set against the allocations: the peers, and the records refused for claiming what is not theirs. */
export function judgeRecords(keys: AgentKeys, entries: ReadonlyMap<string, Entry>): { peers: Map<string, NodeRecord>; refused: Map<string, NodeRecordError> } {
  const allocations = new Map<string, AllocationClaim>();
  for (const e of entries.values()) if ('allocation' in e) allocations.set(e.allocation.node, e.allocation);
  const peers = new Map<string, NodeRecord>();
  const refused = new Map<string, NodeRecordError>();
  for (const [key, e] of entries) {
    if (!('record' in e)) continue;
    const r = e.record;
    const a = allocations.get(r.node);
    const where = `etcd key ${key}`;
    if (!a) refused.set(key, new NodeRecordError(where, 'podSubnet', `is ${r.podSubnet}, but node ${r.node} has no allocation (etcd key ${keys.dir}nodes/${r.node})`));
    else if (a.podSubnet !== r.podSubnet) refused.set(key, new NodeRecordError(where, 'podSubnet', `is ${r.podSubnet}, but ${r.node}'s allocation is ${a.podSubnet}`));
    else if (a.hostAddress !== r.hostAddress) refused.set(key, new NodeRecordError(where, 'hostAddress', `is ${r.hostAddress}, but ${r.node}'s allocation is ${a.hostAddress}`));
    else peers.set(r.node, r);
  }
  return { peers: new Map([...peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), refused };
}

/**
 * The peers to have tunnels to: every valid record its node's allocation agrees with. A
 * node whose current record is corrupt or claims what is not its own is left out rather
 * than kept at its last good value: a stale endpoint or key is not better than none, and
 * the report says why the peer went.
 */
export function peerSet(keys: AgentKeys, entries: ReadonlyMap<string, Entry>): Map<string, NodeRecord> {
  return judgeRecords(keys, entries).peers;
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
