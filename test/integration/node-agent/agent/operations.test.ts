// The agent binary in operation: two nodes behind facing Linux masquerade routers find a
// direct path; restarting an agent drops no established traffic; with etcd down the
// tunnel keeps working; a node removed from etcd is removed by its peer.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentLab, WARREN_AGENT, type AgentNode } from '../../../helpers/agent-lab.js';
import { run, waitFor } from '../../../helpers/sh.js';

let lab: AgentLab;
let a: AgentNode;
let b: AgentNode;

beforeAll(async () => {
  lab = await AgentLab.create();
  a = await lab.addNode('masquerade', 'ops-a');
  b = await lab.addNode('masquerade', 'ops-b');
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') for (const n of [a, b]) console.log(`--- ${n.name} agent log ---\n${lab.log(n).slice(-4000)}`);
});

afterAll(async () => {
  await lab?.destroy();
}, 120_000);

/** Pings every 50 ms until stopped; counts the ones unanswered within 1 s. */
function pingLoop(from: AgentNode, to: string): { stop: () => Promise<{ sent: number; lost: number }> } {
  let running = true;
  let sent = 0;
  let lost = 0;
  const done = (async () => {
    while (running) {
      sent++;
      if (!(await lab.ping(from, to, 1))) lost++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { stop: async () => { running = false; await done; return { sent, lost }; } };
}

describe('warren-agent', () => {
  it('connects two nodes behind facing Linux masquerade routers directly, within 3 s of both running (bench: p50)', async () => {
    const t0 = Date.now();
    await Promise.all([lab.start(a), lab.start(b)]);
    const started = Date.now();
    await waitFor('a to reach b over the overlay', () => lab.ping(a, b.hostAddress, 1), 30_000, 100);
    const ms = Date.now() - started;
    const status = await lab.status(a);
    console.log(`first packet ${ms} ms after both agents answered (${started - t0} ms to start them); a sees ${JSON.stringify(status.peers)}`);
    expect(ms).toBeLessThan(3000);
    expect(status.peers).toMatchObject([{ node: 'ops-b', path: 'direct' }]);
    expect(status.nat).toMatchObject({ mapping: 'endpoint-independent' });
    expect(status.relay).toBeDefined();
  }, 60_000);

  it('drops no established traffic while an agent restarts', async () => {
    const loop = pingLoop(a, b.hostAddress);
    await lab.stop(a);
    await lab.start(a);
    await waitFor('the restarted agent to see its peer', async () => (await lab.status(a)).peers.length === 1, 20_000);
    const { sent, lost } = await loop.stop();
    console.log(`restart: ${sent} pings, ${lost} lost`);
    expect(sent).toBeGreaterThan(5);
    expect(lost).toBe(0);
  }, 60_000);

  it('starts wireguard-go again within about a second when it dies, and traffic resumes', async () => {
    const pid = Number((await run('pgrep', ['-f', `^wireguard-go -f ${a.ifname}$`])).trim());
    expect(pid).toBeGreaterThan(0);
    const before = lab.log(a).length;
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    await waitFor('a to reach b again', () => lab.ping(a, b.hostAddress, 1), 15_000, 50);
    const outage = Date.now() - t0;
    const log = lab.log(a).slice(before);
    console.log(`wireguard-go killed: traffic back after ${outage} ms`);
    const revived = Number((await run('pgrep', ['-f', `^wireguard-go -f ${a.ifname}$`])).trim());
    expect(revived).toBeGreaterThan(0);
    expect(revived).not.toBe(pid);
    // The daemon check (every second) brings the revival forward from the next periodic
    // reconcile (every 5 s here, 10 s by default); then a handshake. A periodic reconcile
    // that happens to fall between the kill and the next check revives it first, without
    // the check's log line (seen once in CI): the bound is what proves the check.
    if (!log.includes('wireguard-go does not answer: starting it again')) console.log('revived by a periodic reconcile before the daemon check');
    expect(outage).toBeLessThan(3000);
    const mtu = (JSON.parse((await a.site.host.exec('ip', ['-j', 'link', 'show', a.ifname])).stdout) as { mtu: number }[])[0]!.mtu;
    expect(mtu).not.toBe(1420); // wireguard-go's own default, set again by the agent in the same pass
  }, 60_000);

  it('keeps the tunnel working while etcd is down', async () => {
    await lab.etcd.stop();
    try {
      const loop = pingLoop(a, b.hostAddress);
      await new Promise((r) => setTimeout(r, 3000));
      const { sent, lost } = await loop.stop();
      expect(sent).toBeGreaterThan(10);
      expect(lost).toBe(0);
      expect((await lab.status(a)).etcd.watcher).not.toBe('connected');
    } finally {
      await lab.etcd.resume();
    }
    await waitFor('the watcher to reconnect', async () => (await lab.status(a)).etcd.watcher === 'connected', 20_000);
  }, 60_000);

  it('notices within 15 s when etcd\'s host vanishes without closing the connection, keeps the tunnel, reconnects, and stops within 5 s meanwhile', async () => {
    // Dropped both ways in a's namespace: no RST, no FIN, the sockets stay open (half-open).
    const blackhole = (on: boolean) => a.site.host.runner('nft', on
      ? ['-f', '-'] : ['delete', 'table', 'inet', 'warren_test_etcd'], on ? {
        input: `table inet warren_test_etcd {
          chain out { type filter hook output priority 0; ip daddr ${lab.etcd.host} tcp dport ${lab.etcd.clientPort} drop; }
          chain in { type filter hook input priority 0; ip saddr ${lab.etcd.host} tcp sport ${lab.etcd.clientPort} drop; }
        }`,
      } : {});
    for (const n of [a, b]) if (!n.process) await lab.start(n);
    await waitFor('a\'s direct path to b', async () => (await lab.status(a)).peers.find((p) => p.node === b.name)?.path === 'direct', 30_000, 200);
    const watcher = async () => (await lab.status(a)).etcd.watcher;
    await waitFor('a\'s watcher to be connected', async () => (await watcher()) === 'connected', 20_000);
    const loop = pingLoop(a, b.hostAddress);
    let t = Date.now();
    await blackhole(true);
    try {
      await waitFor('a to notice etcd is gone', async () => (await watcher()) !== 'connected', 20_000, 100);
      const noticed = Date.now() - t;
      await blackhole(false);
      t = Date.now();
      await waitFor('a to reconnect', async () => (await watcher()) === 'connected', 20_000, 100);
      const back = Date.now() - t;
      const { sent, lost } = await loop.stop();
      console.log(`etcd half-open: noticed after ${noticed} ms, reconnected ${back} ms after the path came back; ${sent} pings, ${lost} lost`);
      expect(noticed).toBeLessThan(15_000);
      expect(lost).toBe(0);
      // Stopping while etcd cannot be reached: the store's retries must not hold the stop.
      await blackhole(true);
      await new Promise((r) => setTimeout(r, 1000));
      const child = a.process!;
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      t = Date.now();
      child.kill('SIGTERM');
      const code = await exit;
      const stopMs = Date.now() - t;
      a.process = undefined;
      console.log(`stopped with etcd unreachable in ${stopMs} ms`);
      expect(code).toBe(0);
      expect(stopMs).toBeLessThan(5000);
    } finally {
      await loop.stop();
      await blackhole(false).catch(() => undefined);
      if (!a.process) await lab.start(a);
    }
  }, 120_000);

  it('keeps its tunnel, its peers and its memory through a flood of junk at its ports', async () => {
    for (const n of [a, b]) if (!n.process) await lab.start(n);
    await waitFor('a\'s direct path to b', async () => (await lab.status(a)).peers.find((p) => p.node === b.name)?.path === 'direct', 30_000, 200);
    const pid = a.process!.pid!;
    const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const before = rssKb();
    const logBefore = lab.log(a).length;
    // From the LAN (a's router): random bytes, STUN-shaped messages with random attributes and
    // WireGuard-shaped handshakes, 30,000 datagrams over about 5 s, at the WireGuard port and
    // the prober's.
    const flood = `
      const d = require('node:dgram').createSocket('udp4');
      const { randomBytes } = require('node:crypto');
      const junk = (i) => {
        const kind = i % 3;
        if (kind === 0) return randomBytes(1 + (i % 1400));
        if (kind === 1) {
          const b = randomBytes(20 + 4 * (i % 100));
          b.writeUInt16BE(i % 0x4000, 0); b.writeUInt16BE(b.length - 20, 2); b.writeUInt32BE(0x2112a442, 4);
          return b;
        }
        const b = randomBytes(148); b[0] = 1; b[1] = b[2] = b[3] = 0; return b;
      };
      let i = 0;
      const batch = () => {
        for (let k = 0; k < 300; k++, i++) d.send(junk(i), i % 2 ? 51820 : 51821, process.argv[1]);
        if (i < 30000) setTimeout(batch, 50); else setTimeout(() => d.close(), 200);
      };
      batch();`;
    // Counted where the agent's socket receives them (after the port share's redirect of
    // STUN-shaped datagrams from the WireGuard port to the prober's): 15,000 sent there, and
    // the 5,000 STUN-shaped of the 15,000 sent to the WireGuard port.
    const count = ['table', 'inet', 'warren_flood_count'];
    await a.site.host.exec('nft', ['add', ...count]);
    await a.site.host.exec('nft', ['add', 'chain', ...count.slice(1), 'in', '{ type filter hook input priority 0; }']);
    await a.site.host.exec('nft', ['add', 'rule', ...count.slice(1), 'in', 'udp', 'dport', '51821', 'counter']);
    const loop = pingLoop(a, b.hostAddress);
    const t = Date.now();
    await run('ip', ['netns', 'exec', a.site.routers[0]!.name, process.execPath, '-e', flood, a.site.hostAddress]);
    const floodMs = Date.now() - t;
    const counted = JSON.parse((await a.site.host.exec('nft', ['-j', 'list', 'table', ...count.slice(1)])).stdout).nftables
      .find((e: { rule?: unknown }) => e.rule).rule.expr.find((x: { counter?: unknown }) => x.counter).counter.packets as number;
    await a.site.host.exec('nft', ['delete', ...count]);
    expect(counted).toBeGreaterThanOrEqual(20_000);
    const { sent, lost } = await loop.stop();
    const after = rssKb();
    const logged = lab.log(a).length - logBefore;
    console.log(`junk flood: 30000 datagrams in ${floodMs} ms, ${counted} at the agent's socket; ${sent} pings, ${lost} lost; agent RSS ${Math.round(before / 1024)} -> ${Math.round(after / 1024)} MiB, log +${logged} bytes`);
    // Junk is dropped without a line each: a flood must not fill the node's disk either.
    expect(logged).toBeLessThan(16 * 1024);
    expect(a.process!.exitCode).toBeNull();
    expect(lost).toBe(0);
    expect((await lab.status(a)).peers.find((p) => p.node === b.name)?.path).toBe('direct');
    expect(after - before).toBeLessThan(32 * 1024);
  }, 120_000);

  it('says loudly when etcd runs without authentication (this lab\'s does)', () => {
    expect(lab.log(a)).toMatch(/"level":"warn".*etcd authentication is off: every client of .* can rewrite every node's record and allocation and the pool/);
  });

  it('refuses a bad config naming the field and value, and the overlay that works keeps working', async () => {
    await lab.stop(a);
    const path = join(a.dir, 'agent.yaml');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(good), listenPort: 70000 }));
    try {
      const r = await a.site.host.exec(WARREN_AGENT, ['run', '--config', path], { allowFailure: true });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('listenPort 70000 must be a whole number from 1 to 65535');
      // No agent runs on a now; the tunnel it left still carries traffic.
      expect(await lab.ping(a, b.hostAddress, 2)).toBe(true);
    } finally {
      writeFileSync(path, good);
    }
    await lab.start(a);
  }, 60_000);

  it('refuses secrets group or others can read (its config with the TURN password inline, a TURN password file, its WireGuard key), and the overlay keeps working', async () => {
    await lab.stop(a);
    const path = join(a.dir, 'agent.yaml');
    const good = readFileSync(path, 'utf8');
    const keyFile = join(a.dir, 'keys', 'wireguard.key');
    const refused = async (what: string) => {
      const r = await a.site.host.exec(WARREN_AGENT, ['run', '--config', path], { allowFailure: true });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain(what);
      // No agent runs on a now; the tunnel it left still carries traffic.
      expect(await lab.ping(a, b.hostAddress, 2)).toBe(true);
    };
    try {
      chmodSync(path, 0o644);
      await refused(`config file with turn.password inline: ${path} holds a secret and is open to its group and others (mode 0644): refused; chmod 0600 ${path}, or move the secret to a file of its own`);
      chmodSync(path, 0o600);
      const passwordFile = join(a.dir, 'turn-password');
      const config = JSON.parse(good) as { turn: Record<string, unknown> };
      writeFileSync(passwordFile, `${String(config.turn.password)}\n`, { mode: 0o640 });
      writeFileSync(path, JSON.stringify({ ...config, turn: { ...config.turn, password: undefined, passwordFile } }));
      await refused(`turn.passwordFile ${passwordFile} holds a secret and is open to its group (mode 0640): refused; chmod 0600 ${passwordFile}`);
      writeFileSync(path, good);
      expect(existsSync(keyFile)).toBe(true);
      chmodSync(keyFile, 0o604);
      await refused(`WireGuard private key ${keyFile} is open to others (mode 0604): refused; move it away to make a new key`);
    } finally {
      writeFileSync(path, good);
      chmodSync(path, 0o600);
      chmodSync(keyFile, 0o600);
    }
    await lab.start(a);
  }, 60_000);

  it('keeps going with an unreachable STUN server, says which, and reaches its peers through the relay', async () => {
    const c = await lab.addNode('home-router', 'ops-c');
    const path = join(c.dir, 'agent.yaml');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), stunServers: ['192.0.2.99:3478'] }));
    await lab.start(c);
    expect(lab.log(c)).toMatch(/"field":"stunServers".*192\.0\.2\.99:3478/);
    expect((await lab.status(c)).nat.reflexive).toBeUndefined();
    await waitFor('c to reach a', () => lab.ping(c, a.hostAddress, 1), 30_000, 200);
    await waitFor('c to settle on a path to a', async () => (await lab.status(c)).peers.find((p) => p.node === 'ops-a')?.path === 'relayed', 20_000);
    await lab.stop(c);
    await lab.etcd.etcdctl(['del', '/warren/agents/ops-c']);
  }, 90_000);

  it('stops gracefully on SIGTERM while a command is in flight, and a second signal forces the exit at once', async () => {
    // A `wg` first in PATH that, once told, takes 2 s: the signal lands while it runs.
    const dir = mkdtempSync(join(tmpdir(), 'warren-slow-wg-'));
    const slow = join(dir, 'slow');
    const started = join(dir, 'started');
    writeFileSync(join(dir, 'wg'), `#!/bin/sh\nif [ -e ${slow} ]; then touch ${started}; sleep 2; fi\nexec /usr/bin/wg "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
    const withWgInFlight = async (signals: number): Promise<{ code: number | null; signal: string | null; ms: number }> => {
      await lab.stop(a);
      rmSync(slow, { force: true });
      await lab.start(a, env);
      const child = a.process!;
      const exit = new Promise<[number | null, string | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
      rmSync(started, { force: true });
      writeFileSync(slow, '');
      await waitFor('the agent to run the slow wg', () => existsSync(started), 20_000, 20);
      const t = Date.now();
      for (let i = 0; i < signals; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 100));
        child.kill('SIGTERM');
      }
      const [code, signal] = await exit;
      a.process = undefined;
      return { code, signal, ms: Date.now() - t };
    };
    try {
      const graceful = await withWgInFlight(1);
      expect(graceful, lab.log(a).slice(-2000)).toMatchObject({ code: 0, signal: null });
      expect(lab.log(a)).toContain('stopping; the interface, its peers and routes stay for the next agent');
      const forced = await withWgInFlight(2);
      console.log(`SIGTERM with wg in flight: stopped gracefully in ${graceful.ms} ms; a second SIGTERM ended it ${forced.ms} ms after the first`);
      expect(forced).toMatchObject({ code: 143, signal: null });
      expect(forced.ms).toBeLessThan(1500);
      expect(lab.log(a)).toContain('second stop signal: exiting now, without a graceful stop');
    } finally {
      rmSync(slow, { force: true });
      if (!a.process) await lab.start(a);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('removes a node deleted from etcd from its peers', async () => {
    await lab.stop(b);
    await lab.etcd.etcdctl(['del', '/warren/agents/ops-b']);
    await waitFor('a to drop b', async () => (await lab.status(a)).peers.every((p) => p.node !== 'ops-b'), 10_000);
    // The record goes first, the tunnel at the reconcile that follows (seen in CI: both keys
    // still configured at the moment status no longer listed b): the tunnel is what a user sees.
    await waitFor('a to remove every peer from its tunnel', async () => {
      const wg = await a.site.host.exec('wg', ['show', a.ifname, 'peers']);
      return wg.stdout.trim() === '';
    }, 10_000);
    expect((await lab.status(a)).peers).toEqual([]);
  }, 30_000);
});
