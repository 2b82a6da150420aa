// The admin commands' pure parts: the etcd roles a node gets, the reconciliation plans,
// and what the command line refuses before etcd is ever contacted.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePermissions, identityProblem, nodeIdentity, permissionPlan, rolePlan, turnIssuerIdentity, type KeyPermission } from '../../../configgen/admin/identity.js';
import { runCli, type CliDeps } from '../../../configgen/cli.js';
import { keyLayout } from '../../../lib/etcd/keys.js';
import { gatewayKey } from '../../../node-agent/gateway/election.js';

const read = (key: string, rangeEnd: string): KeyPermission => ({ access: 'Read', key, rangeEnd });
const readWrite = (key: string): KeyPermission => ({ access: 'Readwrite', key, rangeEnd: '' });

describe('nodeIdentity', () => {
  it('reads the whole prefix and its own credentials, and writes only the node\'s own record', () => {
    expect(nodeIdentity(keyLayout('/warren'), 'node-a', false)).toEqual({
      user: 'node-a',
      role: 'warren-node-node-a',
      permissions: [read('/warren/', '/warren0'), readWrite('/warren/agents/node-a'), read('/warren-credentials/node-a/', '/warren-credentials/node-a0')],
    });
  });

  it('reads no other node\'s credentials, not even one whose name starts with its own', () => {
    const keys = keyLayout('/warren');
    const readable = nodeIdentity(keys, 'a', false).permissions;
    const covers = (key: string) => readable.some((p) => p.rangeEnd === '' ? p.key === key : p.key <= key && key < p.rangeEnd);
    expect(covers(keys.turnCredential('a'))).toBe(true);
    for (const other of ['b', 'a0', 'ab']) expect(covers(keys.turnCredential(other)), other).toBe(false);
  });

  it('adds the gateway key, and only that, for a gateway candidate', () => {
    expect(nodeIdentity(keyLayout('/other/'), 'b', true).permissions).toEqual([
      read('/other/', '/other0'), readWrite('/other/agents/b'), read('/other-credentials/b/', '/other-credentials/b0'), readWrite('/other/gateway/active'),
    ]);
  });

  it('grants the key the agent\'s gateway election uses', () => {
    for (const prefix of ['/warren', '/x/y/']) expect(keyLayout(prefix).gateway).toBe(gatewayKey(prefix));
  });

  it('never writes allocations, the pool or another node\'s keys', () => {
    const keys = keyLayout('/warren');
    const writable = nodeIdentity(keys, 'a', true).permissions.filter((p) => p.access !== 'Read');
    for (const key of [keys.pool, keys.node('a'), keys.subnet(1, 3), keys.host('10.10.0.2'), keys.agent('b'), keys.agent('a0')]) {
      expect(writable.some((p) => p.rangeEnd === '' ? p.key === key : p.key <= key && key < p.rangeEnd), key).toBe(false);
    }
  });

  it('refuses "root" and the issuer\'s user as a node\'s identity', () => {
    expect(identityProblem('root')).toMatch(/administrator/);
    expect(identityProblem('warren-turn-issuer')).toMatch(/issuer/);
    expect(identityProblem('rooted')).toBeUndefined();
  });
});

describe('turnIssuerIdentity', () => {
  it('reads the allocations and writes the credentials, nothing else', () => {
    expect(turnIssuerIdentity(keyLayout('/warren'))).toEqual({
      user: 'warren-turn-issuer',
      role: 'warren-turn-issuer',
      permissions: [read('/warren/nodes/', '/warren/nodes0'), { access: 'Readwrite', key: '/warren-credentials/', rangeEnd: '/warren-credentials0' }],
    });
  });
});

describe('permissionPlan', () => {
  const desired = nodeIdentity(keyLayout('/warren'), 'a', false).permissions;

  it('grants everything to a new role and nothing to a role that is right', () => {
    expect(permissionPlan([], desired)).toEqual({ revoke: [], grant: desired });
    expect(permissionPlan([...desired].reverse(), desired)).toEqual({ revoke: [], grant: [] });
  });

  it('revokes ranges nobody asked for, such as a dropped gateway candidacy or a hand-made grant', () => {
    const gateway = readWrite('/warren/gateway/active');
    expect(permissionPlan([...desired, gateway], desired)).toEqual({ revoke: [gateway], grant: [] });
    // Writing every allocation: another range than any desired one, so it goes.
    const allocations: KeyPermission = { access: 'Readwrite', key: '/warren/nodes/', rangeEnd: '/warren/nodes0' };
    expect(permissionPlan([allocations, desired[1]!, desired[2]!], desired)).toEqual({ revoke: [allocations], grant: [desired[0]] });
  });

  it('re-grants a range whose access differs, without revoking it (etcd replaces the access)', () => {
    const downgraded = [desired[0]!, { ...desired[1]!, access: 'Read' as const }, desired[2]!];
    expect(permissionPlan(downgraded, desired)).toEqual({ revoke: [], grant: [desired[1]] });
  });
});

describe('rolePlan', () => {
  it('takes other roles away from a node user, and leaves root\'s', () => {
    expect(rolePlan(['root', 'warren-node-a'], ['warren-node-a'], 'revoke')).toEqual({ revoke: ['root'], grant: [] });
    expect(rolePlan(['other'], ['root'], 'keep')).toEqual({ revoke: [], grant: ['root'] });
    expect(rolePlan(['root'], ['root'], 'keep')).toEqual({ revoke: [], grant: [] });
  });
});

describe('describePermissions', () => {
  it('says what a role may read and write', () => {
    expect(describePermissions(nodeIdentity(keyLayout('/warren'), 'a', true).permissions))
      .toBe('read /warren/*, /warren-credentials/a/*; read-write /warren/agents/a, /warren/gateway/active');
    expect(describePermissions([{ access: 'Write', key: 'a', rangeEnd: 'c' }])).toBe('write [a, c)');
  });
});

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const deps: CliDeps = {
    env: {},
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    hostname: 'node-1',
    runner: async () => {
      throw new Error('no command may run for an admin command');
    },
  };
  return { status: await runCli(argv, deps), stdout: () => stdout, stderr: () => stderr };
}

describe('warren-configgen admin, before etcd is contacted', () => {
  // The endpoint is one nothing listens on: a command that got past its checks would fail with 3, not 2.
  const unreachable = ['--etcd-endpoints', '127.0.0.1:1', '--etcd-timeout', '100ms'];

  it.each([
    [['admin', 'add-node', 'Node_A'], 'node name "Node_A" is not a Kubernetes node name (lowercase letters, digits, "-" and ".")'],
    [['admin', 'add-node', 'root', '--gateway-candidate'], 'node name "root" is etcd\'s administrator user: a node by that name would get the admin\'s identity'],
    [['admin', 'remove-node', 'a/b'], 'node name "a/b" is not a Kubernetes node name (lowercase letters, digits, "-" and ".")'],
    [['admin', 'remove-node', ''], 'node name "" is empty'],
    [['admin', 'add-node'], 'missing required argument \'name\''],
    [['admin', 'init'], '--pod-cidr is required (or WARREN_POD_CIDR, or podCIDR in the --config file)'],
    [['admin', 'init', '--pod-cidr', '10.244.0.0/16', '--node-bits', '30'], '--node-bits 30 must be at most 24 (16777216 nodes)'],
    [['admin', 'add-node', 'a', '--pod-cidr', '10.244.0.0/33', '--node-bits', '8'], '--pod-cidr "10.244.0.0/33" is not a CIDR such as 10.244.0.0/16'],
    [['admin'], 'admin needs a command: init, add-node, remove-node or turn-issuer (warren-configgen admin --help)'],
    [['admin', 'enable'], 'admin has no command "enable": init, add-node, remove-node or turn-issuer (warren-configgen admin --help)'],
    [['admin', 'turn-issuer'], 'required option \'--turn-secret-file <path>\' not specified'],
    [['admin', 'turn-issuer', '--turn-secret-file', '/nonexistent/secret', '--turn-ttl', '30s'], '--turn-ttl "30s" must be a duration of at least 60s (e.g. 12h)'],
    [['admin', 'turn-issuer', '--turn-secret-file', '/nonexistent/secret', '--turn-ttl', 'soon'], '--turn-ttl "soon" must be a duration of at least 60s (e.g. 12h)'],
  ])('%j: exit 2 with one line naming the value, nothing done', async (argv, message) => {
    const r = await cli([...argv, ...unreachable]);
    expect([r.status, r.stderr(), r.stdout()]).toEqual([2, `warren-configgen: ${message}\n`, '']);
  });

  it('refuses a TURN secret file others can read, or an empty one, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-issuer-unit-'));
    try {
      const file = join(dir, 'secret');
      writeFileSync(file, 's3cret\n', { mode: 0o644 });
      chmodSync(file, 0o644);
      let r = await cli(['admin', 'turn-issuer', '--turn-secret-file', file, ...unreachable]);
      expect(r.status).toBe(2);
      expect(r.stderr()).toContain(`--turn-secret-file ${file}`);
      expect(r.stderr()).toContain('chmod 0600');
      writeFileSync(file, '\n', { mode: 0o600 });
      chmodSync(file, 0o600);
      r = await cli(['admin', 'turn-issuer', '--turn-secret-file', file, ...unreachable]);
      expect([r.status, r.stderr()]).toEqual([2, `warren-configgen: --turn-secret-file ${file} is empty: it must hold coturn's static-auth-secret\n`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('documents exit status 8 in --help', async () => {
    const r = await cli(['--help']);
    expect(r.stdout()).toContain('\n  8  etcd authentication is on and this node has no allocation it may use: an admin runs `admin add-node` first');
    expect(r.stdout()).toMatch(/\n  admin \[command\] +sets up and changes etcd authentication/);
  });
});
