// The publisher's loop on a fake clock with scripted etcd answers: the keep-alive
// schedule, retry while etcd is unreachable, and recovery from a lost lease, without
// waiting. The real store is exercised in test/integration/node-agent/signal/.
import { EtcdLeaseInvalidError, type ITxnRequest, type ITxnResponse } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreRejectedError, StoreUnavailableError } from '../../../../lib/etcd/errors.js';
import type { EtcdStore } from '../../../../lib/etcd/store.js';
import { agentKeys } from '../../../../node-agent/signal/keys.js';
import { Publisher, type LeaseOps } from '../../../../node-agent/signal/publisher.js';
import { FakeTimers } from '../nat/fake-net.js';
import { recordOf } from './records.js';

const down = () => new StoreUnavailableError(['http://127.0.0.1:1'], 'etcd at http://127.0.0.1:1 unreachable (ECONNREFUSED)');
const leaseGone = () => new StoreRejectedError('refused: requested lease not found', { cause: new EtcdLeaseInvalidError('7') });

class FakeEtcd implements LeaseOps {
  log: string[] = [];
  /** Answers for the next keep-alives: a TTL, or an error to throw. */
  keepAlives: (number | Error)[] = [];
  puts: (Error | undefined)[] = [];
  private next = 0;

  async grant(ttl: number): Promise<string> {
    const id = String(++this.next);
    this.log.push(`grant ${ttl} -> ${id}`);
    return id;
  }

  async keepAliveOnce(id: string): Promise<number> {
    const answer = this.keepAlives.shift() ?? 30;
    this.log.push(`keepalive ${id}${answer instanceof Error ? ' !' : ''}`);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async revoke(id: string): Promise<void> {
    this.log.push(`revoke ${id}`);
  }

  kv: Pick<EtcdStore, 'txn'> = {
    txn: async (r: ITxnRequest): Promise<ITxnResponse> => {
      const op = r.success![0]!;
      const err = op.request_put ? this.puts.shift() : undefined;
      this.log.push(op.request_put
        ? `put ${op.request_put.key!.toString()} lease ${op.request_put.lease}${err ? ' !' : ''}`
        : `delete ${op.request_delete_range!.key!.toString()}`);
      if (err) throw err;
      return { succeeded: true, responses: [] } as unknown as ITxnResponse;
    },
  };
}

let publisher: Publisher | undefined;
afterEach(async () => {
  await publisher?.stop();
  publisher = undefined;
});

function setup(extra: { onError?: (err: unknown) => void } = {}) {
  const timers = new FakeTimers();
  const etcd = new FakeEtcd();
  const record = recordOf('node-a', 1);
  const p = new Publisher({
    store: undefined as unknown as EtcdStore, keys: agentKeys(), record, ttlSeconds: 30, timers,
    now: () => new Date(1_700_000_000_000 + timers.now()),
    backoff: { initialMs: 200, maxMs: 5_000, random: () => 0 },
    kv: etcd.kv, leases: etcd, ...extra,
  });
  publisher = p;
  p.start();
  return { timers, etcd, record, p };
}

describe('Publisher', () => {
  it('writes the record once under a lease, then only keeps the lease alive every TTL / 3', async () => {
    const { timers, etcd, p } = setup();
    await timers.advance(35_000);
    expect(etcd.log).toEqual(['grant 30 -> 1', 'put /warren/agents/node-a lease 1', 'keepalive 1', 'keepalive 1', 'keepalive 1']);
    expect(p.status()).toMatchObject({ published: true, writes: 1, leaseId: '1', connection: { state: 'connected' } });
  });

  it('writes on a content change only', async () => {
    const { timers, etcd, record, p } = setup();
    await timers.advance(1);
    p.update({ ...record, candidates: record.candidates.map((c) => ({ ...c })) });
    p.update({ ...record, listenPort: 51821 });
    await timers.advance(1);
    p.update({ ...record, listenPort: 51821 });
    await timers.advance(1);
    expect(etcd.log.filter((l) => l.startsWith('put'))).toHaveLength(2);
    expect(p.status().writes).toBe(2);
  });

  it('retries with backoff while etcd is unreachable, reporting since when, and carries on with the same lease', async () => {
    const { timers, etcd, p } = setup();
    await timers.advance(1);
    etcd.keepAlives = [down(), down(), down()];
    await timers.advance(9_999);
    expect(p.status().connection).toMatchObject({ state: 'retrying', since: new Date(1_700_000_010_000), attempts: 1 });
    // Backoff with random 0: 100, 200, 400 ms (half of 200, 400, 800).
    await timers.advance(100);
    await timers.advance(200);
    expect(p.status().connection).toMatchObject({ state: 'retrying', since: new Date(1_700_000_010_000), attempts: 3 });
    await timers.advance(400);
    expect(p.status().connection).toEqual({ state: 'connected', since: new Date(1_700_000_010_700) });
    expect(etcd.log.slice(2)).toEqual(['keepalive 1 !', 'keepalive 1 !', 'keepalive 1 !', 'keepalive 1']);
    expect(p.status().writes).toBe(1);
  });

  it('re-grants and re-writes when the lease expired while etcd could not hear it', async () => {
    const { timers, etcd, p } = setup();
    etcd.keepAlives = [0];
    await timers.advance(10_001);
    expect(etcd.log).toEqual(['grant 30 -> 1', 'put /warren/agents/node-a lease 1', 'keepalive 1', 'grant 30 -> 2', 'put /warren/agents/node-a lease 2']);
    expect(p.status()).toMatchObject({ published: true, leaseId: '2', writes: 2 });
  });

  it('re-grants when a write finds its lease gone', async () => {
    const { timers, etcd, p } = setup();
    etcd.puts = [leaseGone()];
    await timers.advance(1);
    expect(etcd.log).toEqual(['grant 30 -> 1', 'put /warren/agents/node-a lease 1 !', 'grant 30 -> 2', 'put /warren/agents/node-a lease 2']);
    expect(p.status().published).toBe(true);
  });

  it('reports a refusal other than "unreachable" and keeps retrying', async () => {
    const errors: unknown[] = [];
    const { timers, etcd, p } = setup({ onError: (e) => errors.push(e) });
    etcd.puts = [new StoreRejectedError('permission denied')];
    await timers.advance(1_000);
    expect(errors).toHaveLength(1);
    expect(p.status()).toMatchObject({ published: true, writes: 1 });
  });

  it('stop() leaves the record to its lease; withdraw() deletes it and revokes the lease', async () => {
    const { timers, etcd, p } = setup();
    await timers.advance(1);
    await p.stop();
    expect(etcd.log).toEqual(['grant 30 -> 1', 'put /warren/agents/node-a lease 1']);
    expect(p.status().connection.state).toBe('stopped');
    await p.withdraw();
    expect(etcd.log.slice(2)).toEqual(['delete /warren/agents/node-a', 'revoke 1']);
  });

  it('refuses an invalid record or one carrying a secret before anything is written', async () => {
    const { record, p } = setup();
    expect(() => p.update({ ...record, publicKey: 'nope' })).toThrow('the local record of node node-a: field publicKey "nope"');
    expect(() => p.update({ ...record, privateKey: 'x' } as typeof record)).toThrow('field privateKey is named like a secret');
  });
});
