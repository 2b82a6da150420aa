// The TURN credential issuer's loop against a real etcd: a new node gets its credential at
// once (the watch on allocations, not a timer), a departed node's goes, renewal comes at
// half the life, and a second issuer (a restart) rewrites nothing that is right.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTurnIssuer } from '../../../configgen/admin/turn-issuer.js';
import { keyLayout } from '../../../lib/etcd/keys.js';
import { del, put } from '../../../lib/etcd/ops.js';
import { EtcdStore } from '../../../lib/etcd/store.js';
import { parseTurnCredential, type TurnCredential } from '../../../lib/turn-credential.js';
import { EtcdServer } from '../../helpers/etcd.js';
import { waitFor } from '../../helpers/sh.js';

let etcd: EtcdServer;
let store: EtcdStore;
const keys = keyLayout('/warren');

beforeAll(async () => {
  etcd = await EtcdServer.start();
  store = new EtcdStore({ endpoints: etcd.endpoint, timeoutMs: 5_000 });
});

afterAll(async () => {
  store?.close();
  await etcd?.destroy();
});

async function credentialOf(node: string): Promise<{ credential: TurnCredential; modRevision: string } | undefined> {
  const kv = (await store.range({ key: Buffer.from(keys.turnCredential(node)) })).kvs[0];
  if (!kv) return undefined;
  const c = parseTurnCredential(kv.value.toString(), node);
  if ('problem' in c) throw new Error(c.problem);
  return { credential: c, modRevision: kv.mod_revision };
}

describe('warren-configgen admin turn-issuer', () => {
  it('issues to every allocated node, to a new one at once, renews at half life and deletes a departed node\'s', async () => {
    await store.txn({ compare: [], success: [put(keys.node('a'), '{}'), put(keys.credentialsOf('gone') + 'turn', '{}')], failure: [] });
    let clock = Date.now();
    const lines: string[] = [];
    const stop = new AbortController();
    const loop = runTurnIssuer(store, keys, { secret: 's3cret', ttlSec: 600, now: () => new Date(clock), log: (l) => lines.push(l), signal: stop.signal });
    try {
      await waitFor('a\'s credential', async () => (await credentialOf('a')) !== undefined, 5_000, 20);
      await waitFor('the departed node\'s credential gone', async () => (await store.range({ key: Buffer.from(keys.credentialsOf('gone') + 'turn') })).kvs.length === 0, 5_000, 20);
      const first = (await credentialOf('a'))!;
      expect(first.credential.expiresAt.getTime() - first.credential.issuedAt.getTime()).toBe(600_000);

      // A node allocated now: its credential follows within a watch event, not the issuer's minute of sleep.
      const t0 = Date.now();
      await store.txn({ compare: [], success: [put(keys.node('b'), '{}')], failure: [] });
      await waitFor('b\'s credential', async () => (await credentialOf('b')) !== undefined, 5_000, 10);
      const newNodeMs = Date.now() - t0;

      // Half of a's life gone (the injected clock), and a change to wake the loop: renewed.
      clock += 300_000;
      await store.txn({ compare: [], success: [put(keys.node('c'), '{}')], failure: [] });
      await waitFor('a\'s renewal', async () => (await credentialOf('a'))!.credential.username !== first.credential.username, 5_000, 20);

      // Released: its credentials go with it.
      await store.txn({ compare: [], success: [del(keys.node('b'))], failure: [] });
      await waitFor('b\'s credential gone', async () => (await credentialOf('b')) === undefined, 5_000, 20);
      console.log(`turn-issuer: a new node's credential written ${newNodeMs} ms after its allocation`);
      expect(newNodeMs).toBeLessThan(2_000);
    } finally {
      stop.abort();
      await loop;
    }
    expect(lines.join('\n')).toMatch(/deleted the credentials of departed node\(s\) gone/);

    // A second issuer finds everything right: no write.
    const before = await Promise.all(['a', 'c'].map(credentialOf));
    const again = new AbortController();
    const second = runTurnIssuer(store, keys, { secret: 's3cret', ttlSec: 600, now: () => new Date(clock), log: () => undefined, signal: again.signal });
    await new Promise((r) => setTimeout(r, 500));
    again.abort();
    await second;
    expect(await Promise.all(['a', 'c'].map(credentialOf))).toEqual(before);
  });
});
