// A node on a site that lets nothing out but TCP 443 (corporate and hotel networks; issue
// 11 item 1): its router drops every outbound UDP packet and every TCP connection to
// another port. The agent finds UDP and TCP 3478 silent, allocates its relay over TLS on
// 443 (etcd reached at its own 443 front door), and every other kind of site reaches it
// through that relay (ping and a TCP exchange over the host overlay). When the site opens
// UDP again, the node moves its relay to UDP and goes direct wherever the NATs allow,
// while pings to every peer keep flowing: the longest gap must stay under a second
// (asserted at 1.5 s: the margin a busy 2-core machine needs; 0-420 ms in runs under load,
// one of 920 ms).
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { openEgress, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { seqPing } from '../../../helpers/seq-ping.js';
import { waitFor } from '../../../helpers/sh.js';

const OTHERS: SiteKind[] = ['public', 'full-cone', 'home-router', 'masquerade', 'symmetric', 'double-nat'];
/** A home router facing these goes direct once UDP is open (the NAT matrix); the symmetric NAT stays relayed. */
const DIRECT_AFTER: SiteKind[] = ['public', 'full-cone', 'home-router', 'masquerade'];
const ECHO_PORT = 7007;
const ECHO_BYTES = 256 * 1024;
/** The issue's target is a second; asserted with half a second of margin for 2 busy cores, as the moving-nodes test does. */
const GAP_TARGET_MS = 1000;
const GAP_BOUND_MS = GAP_TARGET_MS + 500;

let lab: AgentLab;
let site: Site;
let blocked: AgentNode;
let others: AgentNode[];
const echoes: ChildProcess[] = [];

beforeAll(async () => {
  lab = await AgentLab.create();
  const front = await lab.lab.frontDoor443({ address: lab.etcd.host, port: lab.etcd.clientPort });
  site = await lab.lab.addSite('home-router', { egress: 'tcp443' });
  blocked = await lab.addNode('home-router', 'tls-n', undefined, { on: { site, host: 0 }, etcdEndpoint: `http://${front}` });
  others = [];
  for (const kind of OTHERS) others.push(await lab.addNode(kind, `tls-${kind}`));
  await Promise.all([blocked, ...others].map((n) => lab.start(n)));
  for (const n of others) echoes.push(echoServer(n));
}, 120_000);

afterAll(async () => {
  for (const e of echoes) e.kill();
  if (process.env.TLS_RELAY_LOGS) for (const n of lab.nodes) console.log(`--- ${n.name} ---\n${lab.log(n).slice(-5000)}`);
  await lab?.destroy();
}, 120_000);

/** A TCP echo server on the node's host-overlay address, in its namespace. */
function echoServer(n: AgentNode): ChildProcess {
  const code = `require('net').createServer((s) => s.pipe(s)).listen(${ECHO_PORT}, '${n.hostAddress}')`;
  return spawn('ip', ['netns', 'exec', n.site.host.name, process.execPath, '-e', code], { stdio: 'ignore' });
}

/** Sends ECHO_BYTES over TCP from `from` to `to`'s echo server; resolves with what came back. */
async function tcpEcho(from: AgentNode, to: AgentNode): Promise<{ ok: boolean; ms: number }> {
  const code = `const s = require('net').connect(${ECHO_PORT}, '${to.hostAddress}'); const t0 = Date.now(); let n = 0;
    const data = Buffer.alloc(${ECHO_BYTES}, 7); s.on('connect', () => s.write(data));
    s.on('data', (d) => { n += d.length; if (n >= ${ECHO_BYTES}) { console.log(JSON.stringify({ ok: n === ${ECHO_BYTES}, ms: Date.now() - t0 })); process.exit(0); } });
    s.on('error', (e) => { console.log(JSON.stringify({ ok: false, ms: 0, error: e.message })); process.exit(1); }); setTimeout(() => process.exit(2), 15000);`;
  const r = await from.site.host.exec(process.execPath, ['-e', code], { allowFailure: true });
  return r.stdout.trim() ? JSON.parse(r.stdout.trim()) as { ok: boolean; ms: number } : { ok: false, ms: 0 };
}

/** Every agent's log lines of paths, relays and mappings since `from` (epoch ms), stamped in ms after it. */
function decisionsSince(from: number): string {
  const wanted = /peer path|TURN|relay|mapping|UDP|path engine/;
  return lab.nodes.map((n) => `--- ${n.name}\n` + lab.log(n).split('\n').flatMap((line) => {
    const at = Date.parse((/"time":"([^"]+)"/.exec(line) ?? [])[1] ?? '');
    return at >= from && wanted.test(line) ? [`+${at - from} ${line.replace(/^\{"time":"[^"]+",/, '{')}`] : [];
  }).join('\n')).join('\n');
}

async function peerOf(from: AgentNode, to: AgentNode) {
  return (await lab.status(from)).peers.find((p) => p.node === to.name);
}

describe('a node on a site that lets only TCP 443 out', () => {
  it('relays over TLS, and nodes of every other kind reach it (ping and TCP)', async () => {
    const started = Date.now();
    await Promise.all(others.map((n) => waitFor(`${blocked.name} to reach ${n.name}`, () => lab.ping(blocked, n.hostAddress), 60_000, 200)));
    console.log(`every kind reached the TCP-443-only node ${((Date.now() - started) / 1000).toFixed(1)} s after the agents answered`);
    const status = await lab.status(blocked);
    expect(status.relayTransport).toBe('tls');
    expect(status.relay).toMatch(/^192\.0\.2\.1[01]:\d+$/);
    expect(status.nat.reflexive).toBeUndefined();
    for (const n of others) {
      expect(await peerOf(blocked, n), n.name).toMatchObject({ path: 'relayed', via: 'tls' });
      expect(await lab.ping(n, blocked.hostAddress), `${n.name} to ${blocked.name}`).toBe(true);
      const echo = await tcpEcho(blocked, n);
      console.log(`TCP over the TLS relay to ${n.name}: ${ECHO_BYTES / 1024} KiB echoed in ${echo.ms} ms`);
      expect(echo.ok, `TCP echo with ${n.name}`).toBe(true);
    }
    expect(lab.log(blocked)).toMatch(/"msg":"TURN relay over tls"/);
  }, 120_000);

  it('a restarted agent goes straight back to TLS, not through UDP\'s and TCP\'s timeouts', async () => {
    const from = lab.log(blocked).length;
    await lab.stop(blocked);
    const started = Date.now();
    await lab.start(blocked);
    await waitFor('the relay over TLS again', async () => (await lab.status(blocked)).relayTransport === 'tls', 10_000, 50);
    const relayAfter = Date.now() - started;
    const pub = others.find((n) => n.kind === 'public')!;
    await waitFor(`${blocked.name} to reach ${pub.name} again`, () => lab.ping(blocked, pub.hostAddress), 30_000, 200);
    console.log(`restarted on the TCP-443-only site: relay over TLS ${relayAfter} ms after start, public node reached after ${Date.now() - started} ms`);
    // No transport failed on the way (the line lists the ones that did).
    expect(lab.log(blocked).slice(from)).not.toContain('"msg":"TURN relay over');
    // Every pair settled again (both ends relayed, pings answered) before UDP opens.
    await waitFor('every peer relayed both ways again', async () => (await Promise.all(others.map(async (n) =>
      (await peerOf(blocked, n))?.path === 'relayed' && (await peerOf(n, blocked))?.path === 'relayed' && lab.ping(blocked, n.hostAddress)))).every(Boolean), 30_000, 200);
  }, 60_000);

  it('moves to UDP, then direct where the NATs allow, when UDP opens again, with no gap in traffic over a second', async () => {
    const pingsFrom = Date.now();
    const pings = others.map((n) => ({ n, ping: seqPing(blocked, n.hostAddress) }));
    await Promise.all(pings.map((p) => p.ping.answering));
    await new Promise((r) => setTimeout(r, 500));
    const opened = Date.now();
    await openEgress(site);
    await waitFor('the relay to move to UDP', async () => (await lab.status(blocked)).relayTransport === 'udp', 30_000, 100);
    const onUdp = Date.now() - opened;
    const direct = others.filter((n) => DIRECT_AFTER.includes(n.kind));
    await waitFor('direct paths to every peer whose NAT allows one', async () =>
      (await Promise.all(direct.map(async (n) => (await peerOf(blocked, n))?.path === 'direct'))).every(Boolean), 30_000, 200);
    const allDirect = Date.now() - opened;
    await new Promise((r) => setTimeout(r, 2000));
    const gaps = await Promise.all(pings.map(async ({ n, ping }) => ({ n, ...(await ping.stop()) })));
    console.log(`(target ${GAP_TARGET_MS} ms, asserted < ${GAP_BOUND_MS} ms)`);
    console.log(`UDP opened: relay on UDP after ${onUdp} ms, direct to ${direct.length} peers after ${allDirect} ms; longest gaps: ${gaps.map((g) => `${g.n.kind} ${g.longestGapMs} ms` +
      (g.gapAfterMs === undefined ? '' : ` (from about ${g.gapAfterMs - (opened - pingsFrom)} ms after opening)`)).join(', ')}; opened at ${new Date(opened).toISOString()}`);
    // A gap over the target comes with what every agent decided meanwhile, ms after opening.
    if (gaps.some((g) => !(g.longestGapMs < GAP_TARGET_MS))) console.log(decisionsSince(opened));
    for (const g of gaps) expect(g.longestGapMs, `longest gap to ${g.n.name}`).toBeLessThan(GAP_BOUND_MS);
    const status = await lab.status(blocked);
    expect(status.nat.reflexive).toMatch(new RegExp(`^${site.publicAddress.replaceAll('.', '\\.')}:`));
    const symmetric = others.find((n) => n.kind === 'symmetric')!;
    expect(await peerOf(blocked, symmetric)).toMatchObject({ path: 'relayed', via: 'udp' });
    expect(lab.log(blocked)).toContain('UDP reaches the TURN server again');
  }, 120_000);
});
