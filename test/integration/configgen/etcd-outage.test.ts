// etcd stopped and restarted under a running configgen (the real server, not a fake):
// the binary retries with backoff, succeeds once etcd is back, and gives up with a clear
// error after --etcd-timeout when it never comes back.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyLayout } from '../../../lib/etcd/keys.js';
import { allocate } from '../../../configgen/allocate.js';
import { carvePool } from '../../../configgen/pool.js';
import { StoreUnavailableError } from '../../../lib/etcd/errors.js';
import { EtcdStore } from '../../../lib/etcd/store.js';
import { EtcdServer } from '../../helpers/etcd.js';
import { waitFor } from '../../helpers/sh.js';
import { configgen, listJson, NodeDirs, nodeArgs, requireBinary, startConfiggen } from './run.js';

let etcd: EtcdServer;
let dirs: NodeDirs;
let other: NodeDirs;
let store: EtcdStore | undefined;

beforeEach(async () => {
  requireBinary();
  etcd = await EtcdServer.start();
  dirs = new NodeDirs();
  other = new NodeDirs();
});
afterEach(async () => {
  store?.close();
  store = undefined;
  dirs.destroy();
  other.destroy();
  await etcd.destroy();
});

describe('etcd unreachable', () => {
  it('retries while etcd is down and completes once it is back', async () => {
    expect((await configgen(nodeArgs(etcd, other, 'node-a'))).exitCode).toBe(0);
    await etcd.stop();
    const run = startConfiggen(nodeArgs(etcd, dirs, 'node-b', ['--etcd-timeout', '60s']));
    await waitFor('configgen to report etcd unreachable twice', () => (run.stderr().match(/unreachable/g) ?? []).length >= 2, 30_000);
    await etcd.resume();
    const r = await run.done;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^warren-configgen: etcd at ${etcd.endpoint} unreachable \\(.*ECONNREFUSED.*\\); retry 1 in \\d+ ms\n`));
    expect(dirs.nodeFile()).toMatchObject({ node: 'node-b' });
    const listed = (await listJson(etcd)).allocations;
    expect(listed.map((a) => a.node).sort()).toEqual(['node-a', 'node-b']);
    expect(new Set(listed.map((a) => a.podSubnet)).size).toBe(2);
  });

  it('stops at once on SIGTERM while it waits for etcd, saying so, writing nothing', async () => {
    await etcd.stop();
    const run = startConfiggen(nodeArgs(etcd, dirs, 'node-a', ['--etcd-timeout', '60s']));
    await waitFor('configgen to report etcd unreachable', () => /unreachable/.test(run.stderr()), 30_000);
    const t = Date.now();
    run.kill('SIGTERM');
    const r = await run.done;
    const ms = Date.now() - t;
    console.log(`configgen waiting for etcd: SIGTERM to exit ${ms} ms`);
    expect(ms).toBeLessThan(2_000);
    expect(r.exitCode).toBe(143);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('warren-configgen: SIGTERM: stopped before finishing; what it wrote is whole, and running it again finishes the job');
    expect(dirs.wroteNothing()).toBe(true);
  });

  it('gives up after --etcd-timeout with an error naming the endpoints, writing nothing', async () => {
    await etcd.stop();
    const started = Date.now();
    const r = await configgen(nodeArgs(etcd, dirs, 'node-a', ['--etcd-timeout', '2s']));
    const elapsed = Date.now() - started;
    expect(r.exitCode).toBe(3);
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(new RegExp(`^warren-configgen: etcd at ${etcd.endpoint} unreachable for 2\\.\\d s \\(\\d+ attempts\\): .*ECONNREFUSED`));
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(8_000);
    expect(dirs.wroteNothing()).toBe(true);
  });

  it('keeps a store usable across an etcd restart, counting the failed round trips', async () => {
    store = new EtcdStore({ endpoints: etcd.endpoint, timeoutMs: 60_000 });
    const keys = keyLayout('/warren');
    const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    const first = await allocate({ kv: store, keys, pool, node: 'node-a' });
    expect(first.created).toBe(true);
    const before = store.roundTrips;

    await etcd.stop();
    const pending = allocate({ kv: store, keys, pool, node: 'node-b' });
    await waitFor('failed round trips while etcd is down', () => store!.roundTrips >= before + 2, 30_000);
    await etcd.resume();
    const second = await pending;
    expect(second.created).toBe(true);
    expect(second.allocation.podSubnet).not.toBe(first.allocation.podSubnet);
    // The restarted etcd kept node-a's allocation: asking again returns it, unchanged.
    expect(await allocate({ kv: store, keys, pool, node: 'node-a' })).toEqual({ allocation: first.allocation, created: false });
  });

  it('reports a store that is down as StoreUnavailableError with the endpoints', async () => {
    await etcd.stop();
    store = new EtcdStore({ endpoints: [etcd.endpoint], timeoutMs: 300 });
    const err = await store.range({ key: Buffer.from('/warren/pool') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreUnavailableError).endpoints).toEqual([etcd.endpoint]);
    expect((err as StoreUnavailableError).exitStatus).toBe(3);
  });
});
