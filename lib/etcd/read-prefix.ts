// Every key under a prefix, read page by page (a large cluster's keys do not fit one gRPC
// message), with the revision of the first page: a watch from revision + 1 misses nothing
// that changed after the read began.
import type { IKeyValue } from 'etcd3';
import type { EtcdStore } from './store.js';
import { prefixEnd } from './keys.js';

const PAGE = 1000;

export async function readPrefix(kv: Pick<EtcdStore, 'range'>, prefix: string): Promise<{ kvs: IKeyValue[]; revision: string }> {
  const kvs: IKeyValue[] = [];
  const end = Buffer.from(prefixEnd(prefix));
  let from = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    // Later pages read at the first page's revision: one consistent snapshot.
    const r = await kv.range({ key: from, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) });
    revision ??= r.header.revision;
    kvs.push(...r.kvs);
    if (!r.more || r.kvs.length === 0) break;
    from = Buffer.concat([r.kvs.at(-1)!.key, Buffer.from([0])]);
  }
  return { kvs, revision };
}
