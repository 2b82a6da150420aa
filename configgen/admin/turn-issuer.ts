// `warren-configgen admin turn-issuer`: the one holder of coturn's REST API secret. It
// keeps every allocated node's TURN credential (lib/turn-credential.ts) in etcd under the
// node's own credentials key, which only that node reads, renews each at half its life,
// and deletes a departed node's. Reconciles: each pass reads allocations and credentials
// and writes the difference, so a restart or a second issuer changes nothing that is
// right. A new allocation wakes it at once (a watch on nodes/); otherwise it sleeps until
// the next renewal, at most a minute.
import type { KeyLayout } from '../../lib/etcd/keys.js';
import { delPrefix, put, text } from '../../lib/etcd/ops.js';
import { readPrefix } from '../../lib/etcd/read-prefix.js';
import { prefixEnd } from '../../lib/etcd/keys.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { watchRange, type RangeWatch } from '../../lib/etcd/watch.js';
import { errorMessage } from '../../lib/errors.js';
import { formatTurnCredential, issueTurnCredential, parseTurnCredential, type TurnCredential } from '../../lib/turn-credential.js';
import { credentialOwner, planCredentials } from './turn-credentials.js';

export interface IssuerOptions {
  secret: string;
  ttlSec: number;
  now?: () => Date;
  log: (line: string) => void;
  /** Ends the loop. */
  signal: AbortSignal;
}

const MAX_SLEEP_MS = 60_000;
const RETRY_MS = 5_000;

export interface PassResult {
  issued: string[];
  removed: string[];
  nextDueAt: Date | undefined;
  /** The allocations' revision: a watch from the next one misses no new node. */
  revision: string;
}

/** One reconciliation: reads allocations and credentials, writes what differs. */
export async function issuerPass(store: EtcdStore, keys: KeyLayout, secret: string, ttlSec: number, now: Date): Promise<PassResult> {
  const nodes = await readPrefix(store, keys.nodes);
  const names = nodes.kvs.map((kv) => text(kv.key).slice(keys.nodes.length)).filter((n) => n !== '');
  const held = new Map<string, TurnCredential | undefined>();
  for (const kv of (await readPrefix(store, keys.credentials)).kvs) {
    const key = text(kv.key);
    const node = credentialOwner(keys, key);
    if (node === undefined) continue;
    if (!held.has(node)) held.set(node, undefined);
    if (key !== keys.turnCredential(node)) continue;
    const c = parseTurnCredential(text(kv.value), node);
    held.set(node, 'problem' in c ? undefined : c);
  }
  const plan = planCredentials(names, held, now, ttlSec);
  for (const node of plan.issue) {
    await store.txn({ compare: [], success: [put(keys.turnCredential(node), formatTurnCredential(issueTurnCredential(secret, node, now, ttlSec)))], failure: [] });
  }
  for (const node of plan.remove) {
    await store.txn({ compare: [], success: [delPrefix(keys.credentialsOf(node))], failure: [] });
  }
  return { issued: plan.issue, removed: plan.remove, nextDueAt: plan.nextDueAt, revision: nodes.revision };
}

export async function runTurnIssuer(store: EtcdStore, keys: KeyLayout, options: IssuerOptions): Promise<void> {
  const now = options.now ?? (() => new Date());
  // A wake that comes while a pass runs is kept for after it: a new node is never missed.
  let pending = false;
  let resolveSleep: (() => void) | undefined;
  const wake = () => {
    pending = true;
    resolveSleep?.();
  };
  let watch: RangeWatch | undefined;
  options.signal.addEventListener('abort', wake, { once: true });
  try {
    while (!options.signal.aborted) {
      pending = false;
      let sleepMs = RETRY_MS;
      try {
        const r = await issuerPass(store, keys, options.secret, options.ttlSec, now());
        if (r.issued.length) options.log(`issued TURN credentials valid ${options.ttlSec} s to ${r.issued.join(', ')}`);
        if (r.removed.length) options.log(`deleted the credentials of departed node(s) ${r.removed.join(', ')}`);
        sleepMs = r.nextDueAt ? Math.min(MAX_SLEEP_MS, Math.max(0, r.nextDueAt.getTime() - now().getTime())) : MAX_SLEEP_MS;
        if (!watch) {
          const w = watchRange(store, { key: keys.nodes, rangeEnd: prefixEnd(keys.nodes), startRevision: String(BigInt(r.revision) + 1n) },
            { onCreated: () => undefined, onEvents: () => wake() });
          watch = w;
          // A lost watch is made again after the next pass; until then the sleep is capped.
          w.ended.catch((err: unknown) => options.log(`watch on ${keys.nodes} ended: ${errorMessage(err)}`)).finally(() => {
            if (watch === w) watch = undefined;
            wake();
          });
        }
      } catch (err) {
        options.log(`cannot reconcile the TURN credentials (retrying in ${RETRY_MS / 1000} s): ${errorMessage(err)}`);
      }
      if (options.signal.aborted) break;
      if (pending) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        resolveSleep = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      resolveSleep = undefined;
    }
  } finally {
    watch?.close();
  }
}
