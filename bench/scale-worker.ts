// Runs inside the lab's etcd namespace (NsWorker, test/helpers/natlab.ts): the root
// namespace cannot reach the lab. Writes the scale bench's records in transactions of
// etcd's size limit.
import { put } from '../lib/etcd/ops.js';
import { EtcdStore } from '../lib/etcd/store.js';

const TXN_OPS = 100; // etcd's --max-txn-ops is 128

export async function putAll(endpoint: string, entries: [string, string][]): Promise<void> {
  const store = new EtcdStore({ endpoints: endpoint, timeoutMs: 20_000 });
  try {
    for (let i = 0; i < entries.length; i += TXN_OPS) {
      await store.txn({ compare: [], success: entries.slice(i, i + TXN_OPS).map(([k, v]) => put(k, v)), failure: [] });
    }
  } finally {
    store.close();
  }
}
