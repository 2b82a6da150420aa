// Node identities in etcd (issue 10, item 1), against a real etcd serving TLS with
// client-certificate authentication: the admin commands that set them up (each run twice:
// the second changes nothing), then what a node's own certificate may do. It may write
// its own record and, as a gateway candidate, the gateway key; it may not (a) write
// another node's record, (c) release or overwrite another node's allocation, (d) change
// the pool. (b), a record naming another node's subnet, is refused by its readers
// (test/integration/node-agent/signal).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdRoleNotFoundError, EtcdUserNotFoundError } from 'etcd3';
import { StorePermissionError, StoreRejectedError } from '../../../lib/etcd/errors.js';
import { EtcdLeases } from '../../../lib/etcd/lease.js';
import { del, get, kvOf, missing, put, putWithLease, text } from '../../../lib/etcd/ops.js';
import { keyLayout, prefixEnd } from '../../../lib/etcd/keys.js';
import { EtcdStore } from '../../../lib/etcd/store.js';
import { EtcdServer } from '../../helpers/etcd.js';
import { EtcdIdentityPki, type Credential } from '../../helpers/pki.js';
import type { RunResult } from '../../../lib/runner.js';
import { configgen, NodeDirs, POOL, requireBinary } from './run.js';

const keys = keyLayout('/warren');
let pki: EtcdIdentityPki;
let etcd: EtcdServer;
let root: Credential;
let a: Credential;
let b: Credential;
let c: Credential;
let stores: EtcdStore[] = [];
let dirs: NodeDirs[] = [];

beforeAll(async () => {
  requireBinary();
  pki = await EtcdIdentityPki.create();
  root = pki.root;
  a = await pki.issue('a');
  b = await pki.issue('b');
  c = await pki.issue('c');
  etcd = await EtcdServer.start({ tls: pki.etcdTls });
});
afterAll(async () => {
  await etcd?.destroy();
  pki?.destroy();
});
afterEach(() => {
  for (const s of stores) s.close();
  for (const d of dirs) d.destroy();
  stores = [];
  dirs = [];
});

function etcdFlags(who: Credential): string[] {
  return ['--etcd-endpoints', etcd.endpoint, '--etcd-cacert', pki.ca, '--etcd-cert', who.cert, '--etcd-key', who.key, '--etcd-timeout', '5s'];
}

/**
 * The binary, its stderr without Node's deprecation warning about TLS to an IP address
 * (grpc-js sets the server name to the endpoint's host, here 127.0.0.1).
 */
async function run(args: readonly string[]): Promise<RunResult> {
  const r = await configgen(args);
  return { ...r, stderr: r.stderr.replace(/^\(node:\d+\) \[DEP0123\] .*\n\(Use `\S+ --trace-deprecation .*\n/m, '') };
}

function admin(args: readonly string[], who = root): Promise<RunResult> {
  return run(['admin', ...args, ...etcdFlags(who)]);
}

/** A node's init container: warren-configgen with the node's certificate. */
function nodeConfiggen(node: string, who: Credential): { dirs: NodeDirs; run: Promise<RunResult> } {
  const d = new NodeDirs();
  dirs.push(d);
  return { dirs: d, run: run([...etcdFlags(who), '--node-name', node, '--cni-conf-dir', d.confDir, '--state-dir', d.stateDir, '--mtu', '1420', ...POOL]) };
}

function storeAs(who: Credential): EtcdStore {
  const s = new EtcdStore({ endpoints: etcd.endpoint, caFile: pki.ca, certFile: who.cert, keyFile: who.key, timeoutMs: 5_000 });
  stores.push(s);
  return s;
}

async function dump(): Promise<Map<string, string>> {
  const r = await storeAs(root).range({ key: Buffer.from('/warren/'), range_end: Buffer.from(prefixEnd('/warren/')) });
  return new Map(r.kvs.map((kv) => [text(kv.key), text(kv.value)]));
}

/** Everything the admin commands set: keys, revision, users with their roles, roles with their permissions. */
async function state(): Promise<unknown> {
  const s = storeAs(root);
  const range = await s.range({ key: Buffer.from('/warren/'), range_end: Buffer.from(prefixEnd('/warren/')) });
  const users = (await s.auth('user list', (x, o) => x.userList(o))).users;
  const roles = (await s.auth('role list', (x, o) => x.roleList(o))).roles;
  return {
    revision: range.header.revision,
    kvs: range.kvs.map((kv) => [text(kv.key), text(kv.value)]),
    users: await Promise.all(users.map(async (name) => [name, (await s.auth('user get', (x, o) => x.userGet({ name }, o))).roles])),
    roles: await Promise.all(roles.map(async (role) => [role, (await s.auth('role get', (x, o) => x.roleGet({ role }, o))).perm
      .map((p) => `${p.permType} ${text(p.key)} ${text(p.range_end)}`)])),
  };
}

/** What a node's credential is refused: etcd's permission denied, nothing else. */
async function refused(request: Promise<unknown>): Promise<void> {
  await expect(request).rejects.toThrow(StorePermissionError);
}

interface Allocation {
  node: string;
  index: number;
  podSubnet: string;
  gateway: string;
  hostAddress: string;
}

async function allocationOf(node: string): Promise<Allocation> {
  return JSON.parse((await dump()).get(keys.node(node))!) as Allocation;
}

const WARNING = () => `warren-configgen: warning: etcd authentication is off: every client of ${etcd.endpoint} ` +
  'can rewrite every node\'s record and allocation and the pool; see README, Security\n';

describe('node identities in etcd', () => {
  it('says loudly that etcd authentication is off', async () => {
    const r = await run(['list', ...etcdFlags(root)]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toBe(WARNING());
  });

  it('admin init stores the pool, creates root and turns authentication on; run again, changes nothing', async () => {
    const first = await admin(['init', ...POOL]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe('pool 10.244.0.0/16 nodeBits 8, host CIDR 10.10.0.0/16: stored at /warren/pool\n' +
      'etcd user root with role root: created\n' +
      'etcd user warren-turn-issuer with role warren-turn-issuer (reads /warren/nodes/, writes /warren-credentials/): created\n' +
      'etcd authentication: turned on; each node now needs `warren-configgen admin add-node NAME` and a client certificate with CN=NAME\n');
    const before = await state();
    const again = await admin(['init', ...POOL]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/: already stored at \/warren\/pool\netcd user root with role root: unchanged\netcd user warren-turn-issuer with role warren-turn-issuer \(reads \/warren\/nodes\/, writes \/warren-credentials\/\): unchanged\netcd authentication: already on;/);
    expect(await state()).toEqual(before);
    expect(before).toMatchObject({ users: [['root', ['root']], ['warren-turn-issuer', ['warren-turn-issuer']]], kvs: [['/warren/pool', '{"podCIDR":"10.244.0.0/16","nodeBits":8,"hostCIDR":"10.10.0.0/16"}']] });
    // On: a certificate no user is named after may not even read.
    await refused(storeAs(c).range({ key: Buffer.from(keys.pool) }));
    const other = await admin(['init', '--pod-cidr', '10.244.0.0/16', '--node-bits', '6']);
    expect([other.exitCode, other.stderr]).toEqual([5, expect.stringMatching(/^warren-configgen: pool parameters differ .*nodeBits 6 given, 8 stored/)]);
  });

  it('admin add-node allocates and creates each node\'s user and role; run again, changes nothing; a changed flag is reconciled', async () => {
    const first = await admin(['add-node', 'a', '--gateway-candidate']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^a: pod subnet 10\.244\.\d+\.0\/24, gateway 10\.244\.\d+\.1, host address 10\.10\.\d+\.\d+ \(newly allocated\)\n/);
    expect(first.stdout.split('\n')[1]).toBe('a: etcd user a created, role warren-node-a created: read /warren/*, /warren-credentials/a/*; read-write /warren/agents/a, /warren/gateway/active');
    // b is a candidate at first, then not: the second add-node takes the gateway key away.
    expect((await admin(['add-node', 'b', '--gateway-candidate'])).exitCode).toBe(0);
    const demoted = await admin(['add-node', 'b']);
    expect(demoted.exitCode, demoted.stderr).toBe(0);
    expect(demoted.stdout).toMatch(/\(already allocated\)\nb: etcd user b unchanged, role warren-node-b updated: read \/warren\/\*, \/warren-credentials\/b\/\*; read-write \/warren\/agents\/b\n$/);

    const before = await state();
    expect(before).toMatchObject({
      users: expect.arrayContaining([['a', ['warren-node-a']], ['b', ['warren-node-b']]]),
      roles: expect.arrayContaining([
        ['warren-node-a', ['Read /warren-credentials/a/ /warren-credentials/a0', 'Read /warren/ /warren0', 'Readwrite /warren/agents/a ', 'Readwrite /warren/gateway/active ']],
        ['warren-node-b', ['Read /warren-credentials/b/ /warren-credentials/b0', 'Read /warren/ /warren0', 'Readwrite /warren/agents/b ']],
      ]),
    });
    for (const args of [['add-node', 'a', '--gateway-candidate'], ['add-node', 'b']]) {
      const again = await admin(args);
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/\(already allocated\)\n\w: etcd user \w unchanged, role warren-node-\w unchanged: /);
    }
    expect(await state()).toEqual(before);
  });

  it('refuses a bad node name before contacting etcd', async () => {
    const r = await admin(['add-node', 'Node_A']);
    expect([r.exitCode, r.stderr]).toEqual([2, 'warren-configgen: node name "Node_A" is not a Kubernetes node name (lowercase letters, digits, "-" and ".")\n']);
  });

  it('(a) a node cannot write another node\'s record; its own it writes under a lease', async () => {
    await storeAs(root).txn({ compare: [], success: [put(keys.agent('b'), '{"node":"b"}')], failure: [] });
    const asA = storeAs(a);
    await refused(asA.txn({ compare: [], success: [put(keys.agent('b'), '{"node":"b","endpoints":["203.0.113.66:51820"]}')], failure: [] }));
    await refused(asA.txn({ compare: [], success: [del(keys.agent('b'))], failure: [] }));
    expect((await dump()).get(keys.agent('b'))).toBe('{"node":"b"}');

    const leases = new EtcdLeases(asA);
    const lease = await leases.grant(30);
    await asA.txn({ compare: [], success: [putWithLease(keys.agent('a'), '{"node":"a"}', lease)], failure: [] });
    expect((await dump()).get(keys.agent('a'))).toBe('{"node":"a"}');
    await leases.revoke(lease);
    expect((await dump()).has(keys.agent('a'))).toBe(false);
  });

  it('(c) a node cannot release or overwrite another node\'s allocation, nor allocate', async () => {
    const before = await dump();
    const bOwn = await allocationOf('b');
    const bKeys = [keys.node('b'), keys.subnet(bOwn.index, 3), keys.host(bOwn.hostAddress)];
    expect(bKeys.map((k) => before.has(k))).toEqual([true, true, true]);
    const asA = storeAs(a);
    for (const key of bKeys) {
      await refused(asA.txn({ compare: [], success: [put(key, 'a')], failure: [] }));
      await refused(asA.txn({ compare: [], success: [del(key)], failure: [] }));
    }
    // Nor a subnet of its own choosing: a's allocation keys are the admin's too.
    await refused(asA.txn({ compare: [], success: [put(keys.subnet(200, 3), 'a')], failure: [] }));
    const release = await run(['release', '--node', 'b', ...etcdFlags(a)]);
    expect([release.exitCode, release.stderr]).toEqual([7, expect.stringMatching(/refused the txn request: .*permission denied\n$/)]);
    const addNode = await admin(['add-node', 'x'], a);
    expect(addNode.exitCode).toBe(7);
    expect(addNode.stderr).toMatch(/permission denied: the admin commands need etcd's root user, a client certificate with CN=root \(--etcd-cert, --etcd-key\)\n$/);
    expect(await dump()).toEqual(before);
  });

  it('(d) a node cannot change the pool', async () => {
    const before = await dump();
    const asA = storeAs(a);
    await refused(asA.txn({ compare: [], success: [put(keys.pool, '{"podCIDR":"10.0.0.0/8","nodeBits":2,"hostCIDR":"10.10.0.0/16"}')], failure: [] }));
    await refused(asA.txn({ compare: [], success: [del(keys.pool)], failure: [] }));
    expect((await admin(['init', ...POOL], a)).exitCode).toBe(7);
    expect(await dump()).toEqual(before);
  });

  it('the gateway key: a candidate may take it, another node may not', async () => {
    const take = (s: EtcdStore, node: string) => s.txn({ compare: [missing(keys.gateway)], success: [put(keys.gateway, node)], failure: [get(keys.gateway)] });
    await refused(take(storeAs(b), 'b'));
    const asA = storeAs(a);
    expect((await take(asA, 'a')).succeeded).toBe(true);
    await refused(storeAs(b).txn({ compare: [], success: [del(keys.gateway)], failure: [] }));
    expect(text(kvOf((await asA.txn({ compare: [], success: [get(keys.gateway)], failure: [] })).responses[0])?.value)).toBe('a');
    await asA.txn({ compare: [], success: [del(keys.gateway)], failure: [] });
  });

  it('a node\'s configgen with its own certificate finds its allocation and writes its files, writing nothing to etcd', async () => {
    const before = await state();
    const own = await allocationOf('a');
    const { dirs: d, run } = nodeConfiggen('a', a);
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^a: pod subnet ${own.podSubnet.replace(/\./g, '\\.')}, .*\\(already allocated\\)`));
    expect(d.nodeFile()).toMatchObject({ node: 'a', podSubnet: own.podSubnet, hostAddress: own.hostAddress });
    expect(d.conflist()).toMatchObject({ name: expect.any(String) });
    expect(await state()).toEqual(before);
  });

  it('a node the admin has not added fails with exit status 8 and writes nothing', async () => {
    const before = await state();
    // c: a certificate etcd knows no user for.
    const stranger = nodeConfiggen('c', c);
    const r = await stranger.run;
    expect(r.exitCode, r.stderr).toBe(8);
    expect(r.stderr).toBe('warren-configgen: etcd refused this credential even reading node c\'s allocation (etcd authentication is on, ' +
      'and the credential is not one of a node an admin added): an admin runs `warren-configgen admin add-node c` first, ' +
      'and the node uses the certificate issued for it (CN=c)\n');
    expect(stranger.dirs.wroteNothing()).toBe(true);
    // a's certificate naming a node without an allocation: it may read, not allocate.
    const unknown = nodeConfiggen('d', a);
    const u = await unknown.run;
    expect(u.exitCode).toBe(8);
    expect(u.stderr).toBe('warren-configgen: node d has no allocation, and etcd refused to create one with this node\'s credentials ' +
      '(etcd authentication is on): an admin runs `warren-configgen admin add-node d` first\n');
    expect(unknown.dirs.wroteNothing()).toBe(true);
    expect(await state()).toEqual(before);
  });

  it('admin remove-node takes away b\'s keys, user and role, leaves a alone; run again, changes nothing', async () => {
    const asB = storeAs(b);
    await asB.txn({ compare: [], success: [put(keys.agent('b'), '{"node":"b"}')], failure: [] });
    // As if b had been the gateway while a candidate (its lease is one b could keep alive forever).
    await storeAs(root).txn({ compare: [], success: [put(keys.gateway, 'b')], failure: [] });
    const aBefore = await allocationOf('a');
    const bOwn = await allocationOf('b');

    const r = await admin(['remove-node', 'b']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`b: released pod subnet ${bOwn.podSubnet} and host address ${bOwn.hostAddress}; ` +
      'etcd user b deleted, role warren-node-b deleted; it held the gateway key, now free\n');
    const after = await dump();
    expect([...after.keys()].filter((k) => /\/b$|gateway|\/subnets\/|\/hosts\//.test(k)))
      .toEqual([keys.host(aBefore.hostAddress), keys.subnet(aBefore.index, 3)].sort());
    expect(await allocationOf('a')).toEqual(aBefore);
    await refused(asB.range({ key: Buffer.from(keys.pool) }));
    const s = storeAs(root);
    await expect(s.auth('user get', (x, o) => x.userGet({ name: 'b' }, o))).rejects.toSatisfy((e) => e instanceof StoreRejectedError && e.cause instanceof EtcdUserNotFoundError);
    await expect(s.auth('role get', (x, o) => x.roleGet({ role: 'warren-node-b' }, o))).rejects.toSatisfy((e) => e instanceof StoreRejectedError && e.cause instanceof EtcdRoleNotFoundError);

    const before = await state();
    const again = await admin(['remove-node', 'b']);
    expect([again.exitCode, again.stdout]).toEqual([0, 'b: held no allocation; etcd user b absent, role warren-node-b absent\n']);
    expect(await state()).toEqual(before);
    // a still works as before.
    expect((await nodeConfiggen('a', a).run).exitCode).toBe(0);
  });
});
