// The resident fast path (issue 12, item 1) on a real node: netns, OVS, host-local, the
// built executable and `warren cni-server`. Every verb and refusal answers the same through
// the server as standalone, and no ADD fails while the server is absent, killed in the
// middle of one, or stopped (SIGSTOP) with one in flight; nothing is allocated twice.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execRunner } from '../../../lib/runner.js';
import { CniServer } from '../../helpers/cni-server.js';
import type { Netns } from '../../helpers/netns.js';
import { nodeState, podResidue } from '../../helpers/node-state.js';
import { CNI_PATH, WARREN_CNI as SHIM, type PluginReply } from '../../helpers/plugin.js';
import { waitFor } from '../../helpers/sh.js';
import { ADD_REFUSALS, NodeFixture } from './fixture.js';

let fx: NodeFixture;
let server: CniServer;
let socket: string;
let slowPath: string;

beforeAll(async () => {
  fx = await NodeFixture.start();
  socket = join(fx.dataDir, 'cni.sock');
  // An IPAM that is host-local after a pause, and says when it began (the test's cue to
  // kill or stop the server while the allocation is in flight). Its environment is the
  // executable's, passed through the server.
  const bin = join(fx.dataDir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'slow-ipam'), [
    '#!/bin/sh',
    'if [ "$CNI_COMMAND" = ADD ] && [ -n "$SLOW_IPAM_MARK" ]; then touch "$SLOW_IPAM_MARK"; sleep "${SLOW_IPAM_DELAY:-1}"; fi',
    `exec ${CNI_PATH}/host-local`,
    '',
  ].join('\n'));
  chmodSync(join(bin, 'slow-ipam'), 0o755);
  slowPath = `${bin}:${CNI_PATH}`;
});
beforeEach(async () => {
  server = await CniServer.start(fx.node, socket);
});
afterEach(async () => {
  await server.stop();
  await fx.cleanup();
});
afterAll(async () => {
  await fx.stop();
});

const resident = (patch: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) => fx.config({ residentSocket: socket, ...patch }, ipam);
const standalone = (patch: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) =>
  fx.config({ residentSocket: join(fx.dataDir, 'nobody-listens.sock'), ...patch }, ipam);

function allocations(): string[] {
  try {
    return readdirSync(fx.ipamDir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')).sort();
  } catch {
    return [];
  }
}

async function podAddresses(pod: Netns): Promise<string[]> {
  const links = JSON.parse((await pod.exec('ip', ['-json', 'address', 'show', 'eth0'])).stdout) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
}

function addressOf(r: PluginReply): string {
  return (r.json!.ips as { address: string }[])[0]!.address;
}

/** After an ADD that fell back: the pod holds the result's address, host-local exactly that one, and DEL leaves nothing. */
async function expectOneAttachment(pod: Netns, r: PluginReply, containerId: string): Promise<void> {
  expect(r.exitCode, r.stdout).toBe(0);
  expect(await podAddresses(pod)).toEqual([addressOf(r)]);
  expect(allocations()).toEqual([addressOf(r).split('/')[0]]);
  const state = await nodeState(fx.node, fx.ovs, fx.ipamDir);
  expect(podResidue(state).veths).toHaveLength(1);
  expect(podResidue(state).ports).toHaveLength(1);
  const del = await fx.cni({ command: 'DEL', config: standalone(), containerId, netns: pod.path });
  expect(del.exitCode, del.stdout).toBe(0);
  expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir))).toEqual({ veths: [], ports: [], allocations: [] });
}

describe('the resident server serves', () => {
  it('ADD, CHECK and DEL, and the pod gets its address', async () => {
    const pod = await fx.pod();
    const add = await fx.cni({ command: 'ADD', config: resident(), containerId: 'r1', netns: pod.path });
    expect(add.exitCode, add.stdout).toBe(0);
    expect(await podAddresses(pod)).toEqual([addressOf(add)]);
    const check = await fx.cni({ command: 'CHECK', config: resident({ prevResult: add.json }), containerId: 'r1', netns: pod.path });
    expect(check.exitCode, check.stdout).toBe(0);
    const del = await fx.cni({ command: 'DEL', config: resident(), containerId: 'r1', netns: pod.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(server.served().map((l) => l.verb)).toEqual(['ADD', 'CHECK', 'DEL']);
    expect(allocations()).toEqual([]);
  });

  it('many ADDs at once, none waiting behind a slow IPAM call', async () => {
    const pods = await Promise.all(Array.from({ length: 6 }, () => fx.pod()));
    const finished: string[] = [];
    const call = (i: number, env?: Record<string, string>, ipam: Record<string, unknown> = {}) =>
      fx.cni({ command: 'ADD', config: resident({}, ipam), containerId: `c${i}`, netns: pods[i]!.path, env }).then((r) => {
        finished.push(`c${i}`);
        return r;
      });
    const mark = join(fx.dataDir, 'slow-began');
    const slow = call(0, { CNI_PATH: slowPath, SLOW_IPAM_MARK: mark, SLOW_IPAM_DELAY: '4' }, { type: 'slow-ipam' });
    await waitFor('the slow IPAM call to begin', () => existsSync(mark));
    const quick = await Promise.all([1, 2, 3, 4, 5].map((i) => call(i)));
    for (const r of quick) expect(r.exitCode, r.stdout).toBe(0);
    expect(finished).not.toContain('c0');
    expect((await slow).exitCode).toBe(0);
    expect(finished.at(-1)).toBe('c0');
    expect(server.served().filter((l) => l.verb === 'ADD')).toHaveLength(6);
    expect(new Set([await slow, ...quick].map(addressOf)).size).toBe(6);
  });
});

describe('a newer server', () => {
  it('takes the socket from a running one (a rolling update), which leaves it to the newer one when it stops', async () => {
    const newer = await CniServer.start(fx.node, socket);
    try {
      const pod = await fx.pod();
      const add = await fx.cni({ command: 'ADD', config: resident(), containerId: 'n1', netns: pod.path });
      expect(add.exitCode, add.stdout).toBe(0);
      await server.stop();
      expect(existsSync(socket)).toBe(true);
      const del = await fx.cni({ command: 'DEL', config: resident(), containerId: 'n1', netns: pod.path });
      expect(del.exitCode, del.stdout).toBe(0);
      expect(newer.served().map((l) => l.verb)).toEqual(['ADD', 'DEL']);
      expect(server.served()).toEqual([]);
    } finally {
      await newer.stop();
    }
    expect(existsSync(socket)).toBe(false);
  });
});

describe('no ADD fails for want of the server', () => {
  it('works standalone when the socket is absent', async () => {
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: standalone(), containerId: 'a1', netns: pod.path });
    await expectOneAttachment(pod, r, 'a1');
    expect(server.lines().filter((l) => l.verb)).toEqual([]);
  });

  it('works standalone when the socket refuses (a server killed while idle leaves its socket file)', async () => {
    server.signal('SIGKILL');
    await server.exited;
    expect(existsSync(socket)).toBe(true);
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: resident(), containerId: 'a2', netns: pod.path });
    await expectOneAttachment(pod, r, 'a2');
  });

  /** An ADD through the server whose IPAM call takes `delay` seconds, once that call has begun. */
  async function addWithIpamInFlight(pod: Netns, containerId: string, delay: string, patch: Record<string, unknown> = {}): Promise<{ reply: Promise<PluginReply> }> {
    const mark = join(fx.dataDir, `${containerId}-began`);
    const env = { CNI_PATH: slowPath, SLOW_IPAM_MARK: mark, SLOW_IPAM_DELAY: delay };
    const add = fx.cni({ command: 'ADD', config: resident(patch, { type: 'slow-ipam' }), containerId, netns: pod.path, env });
    await waitFor('the server\'s IPAM call to begin', () => existsSync(mark));
    return { reply: add }; // not awaited: the test acts while it is in flight
  }

  it('converges when the server is killed (SIGKILL) with the ADD in flight', async () => {
    const pod = await fx.pod();
    const add = await addWithIpamInFlight(pod, 'k1', '0.5');
    server.signal('SIGKILL');
    const r = await add.reply;
    expect(server.served()).toEqual([]);
    await expectOneAttachment(pod, r, 'k1');
  });

  it('converges when the server is stopped (SIGSTOP) with the ADD in flight, and does nothing more once continued', async () => {
    const pod = await fx.pod();
    // The server's IPAM child is not stopped with it: it allocates while the server sleeps.
    const logFile = join(fx.dataDir, 'stop.log');
    const add = await addWithIpamInFlight(pod, 's1', '0.2', { logFile });
    server.signal('SIGSTOP');
    const r = await add.reply;
    expect(r.exitCode, r.stdout).toBe(0);
    const before = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    server.signal('SIGCONT');
    await waitFor('the server to find its request fenced', () => server.lines().some((l) => l.msg === 'fenced'));
    expect(server.served()).toEqual([]);
    // The server went on with nothing: the node is as the standalone ADD left it.
    expect(await nodeState(fx.node, fx.ovs, fx.ipamDir)).toEqual(before);
    // The agent counts calls from the log: the fenced attempt is no failed call, the standalone DEL and ADD are there.
    const logged = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; code?: number });
    expect(logged.filter((l) => l.level === 'error' && l.code !== undefined)).toEqual([]);
    expect(logged.filter((l) => l.msg === 'added' || l.msg === 'deleted').map((l) => l.msg)).toEqual(['deleted', 'added']);
    await expectOneAttachment(pod, r, 's1');
  });

  it('works standalone when the server does not see host-local\'s store as the executable does (its container lacks the mount)', async () => {
    await server.stop();
    // Its own empty directory over the data directory: what a container without the hostPath has.
    server = await CniServer.start(fx.node, socket, `mkdir -p ${fx.ipamDir}; mount -t tmpfs none ${fx.ipamDir}; exec "$@"`);
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: resident(), containerId: 'v1', netns: pod.path });
    expect(server.lines().filter((l) => l.msg === 'refused').map((l) => l.reason)).toEqual([expect.stringMatching(/is not here what it is for the executable/)]);
    await expectOneAttachment(pod, r, 'v1');
  });

  it('leaves to the executable the verbs that run ovs-vsctl when the server has none (the warren-node image), and serves ADD on an existing bridge', async () => {
    const pod = await fx.pod();
    const first = await fx.cni({ command: 'ADD', config: standalone(), containerId: 'o0', netns: pod.path }); // the bridge exists from here on
    expect(first.exitCode, first.stdout).toBe(0);
    expect((await fx.cni({ command: 'DEL', config: standalone(), containerId: 'o0', netns: pod.path })).exitCode).toBe(0);
    await server.stop();
    server = await CniServer.start(fx.node, socket, 'mount --bind /dev/null /usr/bin/ovs-vsctl; exec "$@"');
    const status = await fx.cni({ command: 'STATUS', config: resident({ cniVersion: '1.1.0' }) });
    expect(status.exitCode, status.stdout).toBe(0);
    expect(server.lines().filter((l) => l.msg === 'refused').map((l) => l.reason)).toEqual(['ovs-vsctl is not installed here']);
    const r = await fx.cni({ command: 'ADD', config: resident(), containerId: 'o1', netns: pod.path });
    expect(server.served().map((l) => l.verb)).toEqual(['ADD']);
    await expectOneAttachment(pod, r, 'o1');
  });

  it('works standalone when the server is stopped before the request arrives, which it then refuses', async () => {
    server.signal('SIGSTOP');
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: resident(), containerId: 's2', netns: pod.path });
    expect(r.exitCode, r.stdout).toBe(0);
    const before = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    server.signal('SIGCONT');
    await waitFor('the server to refuse the stale request', () => server.lines().some((l) => l.msg === 'refused'));
    expect(await nodeState(fx.node, fx.ovs, fx.ipamDir)).toEqual(before);
    await expectOneAttachment(pod, r, 's2');
  });
});

describe('the same answer on both paths', () => {
  interface Case {
    what: string;
    command: string;
    /** Config over the valid one (1.0.0), or raw stdin. */
    config?: Record<string, unknown> | string;
    ipam?: Record<string, unknown>;
    env?: Record<string, string>;
    /** Who answers on the resident path: the server, or the executable alone (VERSION, a config it cannot read, or one naming an unusable socket). */
    by: 'server' | 'executable';
    /** Made before the call, on both paths alike, and undone after. */
    attached?: boolean;
  }
  const cases: Case[] = [
    { what: 'VERSION', command: 'VERSION', by: 'executable' },
    { what: 'ADD', command: 'ADD', by: 'server' },
    { what: 'DEL', command: 'DEL', attached: true, by: 'server' },
    { what: 'DEL of nothing', command: 'DEL', by: 'server' },
    { what: 'CHECK', command: 'CHECK', attached: true, by: 'server' },
    { what: 'CHECK of an address the pod lacks (102)', command: 'CHECK', attached: true, by: 'server',
      config: { prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: 'x' }], ips: [{ address: '10.244.3.250/24', interface: 0 }], routes: [] } } },
    { what: 'CHECK without prevResult (7)', command: 'CHECK', by: 'server' },
    { what: 'GC', command: 'GC', attached: true, config: { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }, by: 'server' },
    { what: 'STATUS', command: 'STATUS', config: { cniVersion: '1.1.0' }, by: 'server' },
    { what: 'STATUS with OVS unreachable (50)', command: 'STATUS', config: { cniVersion: '1.1.0', ovsdb: 'unix:/nonexistent/db.sock' }, by: 'server' },
    { what: 'ADD with OVS unreachable, rolled back (104)', command: 'ADD', config: { ovsdb: 'unix:/nonexistent/db.sock' }, by: 'server' },
    // Every escape the shim writes and reads: quotes, backslashes, control characters, UTF-8 of 2, 3 and 4 bytes.
    { what: 'ADD whose config holds quotes, backslashes, a tab and non-ASCII (returned in the result)', command: 'ADD', by: 'server',
      config: { dns: { nameservers: ['10.0.0.10'], search: ['ünï-€.example', 'tab\there'], options: ['quote"back\\slash', 'emoji-😀'] } } },
    { what: 'ADD whose pod routes fail after IPAM, rolled back (101)', command: 'ADD', ipam: { routes: [{ dst: '192.168.77.0/24', gw: '172.31.255.1' }] }, by: 'server' },
    ...ADD_REFUSALS.map(([what, code, env, config]): Case => ({
      what: `ADD refused: ${what} (${code})`, command: 'ADD', env, config,
      // The shim forwards only the five verbs, and only a config it can read naming a usable socket.
      by: typeof config === 'string' || (config !== undefined && 'residentSocket' in config) || env.CNI_COMMAND !== undefined ? 'executable' : 'server',
    })),
  ];

  async function once(c: Case, pod: Netns, viaServer: boolean): Promise<{ exitCode: number; stdout: unknown }> {
    const configOf = (patch: Record<string, unknown>) => (viaServer ? resident(patch, c.ipam) : standalone(patch, c.ipam));
    const config = typeof c.config === 'string' ? c.config
      : c.config && 'residentSocket' in c.config ? fx.config(c.config, c.ipam) : configOf(c.config ?? {});
    if (c.attached) {
      const add = await fx.cni({ command: 'ADD', config: standalone(), containerId: 'same', netns: pod.path });
      expect(add.exitCode, add.stdout).toBe(0);
    }
    const before = server.lines().length;
    const r = await fx.cni({ command: c.command, config, containerId: 'same', netns: pod.path, env: c.env });
    const logged = server.lines().slice(before).map((l) => l.msg);
    const expected = viaServer && c.by === 'server' ? ['served'] : [];
    expect(logged, `${c.what}: the server's part`).toEqual(expected);
    await fx.cni({ command: 'DEL', config: standalone(), containerId: 'same', netns: pod.path });
    // host-local hands out the next address after the last one: from the start again, so
    // that both paths' ADDs get the same address (and the same MAC).
    rmSync(join(fx.ipamDir, 'last_reserved_ip.0'), { force: true });
    expect(allocations()).toEqual([]);
    // Parsed when JSON, so that a difference shows field by field.
    return { exitCode: r.exitCode, stdout: r.json ?? r.stdout };
  }

  it.each(cases.map((c) => [c.what, c] as const))('%s', async (_, c) => {
    const pod = await fx.pod();
    const viaServer = await once(c, pod, true);
    const alone = await once(c, pod, false);
    expect(viaServer).toEqual(alone);
  });
});

describe('the shim alone', () => {
  it('answers the spec\'s error (100) when the plugin it falls back on is missing beside it', async () => {
    const dir = join(fx.dataDir, 'lonely');
    mkdirSync(dir);
    copyFileSync(SHIM, join(dir, 'warren'));
    const r = await execRunner(join(dir, 'warren'), [], { env: { CNI_COMMAND: 'VERSION' }, replaceEnv: true, allowFailure: true, input: '' });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', code: 100, msg: `cannot run the standalone plugin ${dir}/warren-cni: No such file or directory` });
  });
});
