// The baseline the configgen bench measures against: Evio's allocator, which walks the
// candidate subnets from the first one with one transaction each
// (If(subnet key missing) Then(put)), until one succeeds. Its cost per allocation grows
// with the number of nodes already allocated. Kept here, not in configgen/: it is the
// design Warren replaces, measured, never used.
import type { EtcdStore } from '../lib/etcd/store.js';
import { missing, put } from '../lib/etcd/ops.js';

export async function walkAllocate(kv: Pick<EtcdStore, 'txn'>, prefix: string, subnets: number, node: string): Promise<number | undefined> {
  for (let i = 0; i < subnets; i++) {
    const key = `${prefix}/subnets/${i}`;
    const r = await kv.txn({ compare: [missing(key)], success: [put(key, node)], failure: [] });
    if (r.succeeded) return i;
  }
  return undefined;
}
