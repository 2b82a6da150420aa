// Issue 10 item 3: TURN credentials per node that expire. coturn runs its REST API
// (use-auth-secret); the secret lives only with `warren-configgen admin turn-issuer`,
// which writes each node its credential in etcd (authentication on: each node reads only
// its own). Two agents that can meet only through the relay wait for their credentials,
// connect once the issuer runs, and move their allocations to fresh credentials before
// the old ones expire, with traffic flowing across the move.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keyLayout } from '../../../../lib/etcd/keys.js';
import { issueTurnCredential } from '../../../../lib/turn-credential.js';
import { formatEndpoint } from '../../../../node-agent/nat/stun-address.js';
import { AgentLab, WARREN_CONFIGGEN, type AgentNode } from '../../../helpers/agent-lab.js';
import { NatLab } from '../../../helpers/natlab.js';
import { seqPing } from '../../../helpers/seq-ping.js';
import { waitFor } from '../../../helpers/sh.js';

const SECRET = 'natlab-rest-secret';
/** The issuer's shortest TTL: rotation is due 45 s after a credential is issued. */
const TTL_SEC = 60;

let nat: NatLab | undefined;
let lab: AgentLab | undefined;
let issuer: { child: ChildProcess; exited: Promise<number | null>; log: string; dir: string } | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && lab) {
    for (const n of lab.nodes) console.log(`--- ${n.name} agent log ---\n${lab.log(n).slice(-6000)}`);
    if (issuer) console.log(`--- issuer log ---\n${readFileSync(issuer.log, 'utf8').slice(-3000)}`);
  }
  issuer?.child.kill('SIGKILL');
  if (issuer) rmSync(issuer.dir, { recursive: true, force: true });
  issuer = undefined;
  await lab?.destroy();
  await nat?.destroy();
  lab = undefined;
  nat = undefined;
}, 120_000);

/** The issuer as a user runs it: the built binary, its own certificate (CN=warren-turn-issuer), the secret in a 0600 file. */
async function startIssuer(agents: AgentLab): Promise<NonNullable<typeof issuer>> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-issuer-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const cert = await agents.pki!.installFor('warren-turn-issuer', join(dir, 'etcd'));
  const log = join(dir, 'issuer.log');
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', agents.etcd.netns!, WARREN_CONFIGGEN, 'admin', 'turn-issuer',
    '--turn-secret-file', secretFile, '--turn-ttl', `${TTL_SEC}s`, '--etcd-endpoints', agents.etcd.endpoint,
    '--etcd-cacert', cert.caFile, '--etcd-cert', cert.certFile, '--etcd-key', cert.keyFile], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, log, dir };
}

/** turnutils_uclient's exit status allocating with the given credential from the node's host: 0 allocated, else refused. */
async function allocateAs(node: AgentNode, username: string, password: string): Promise<number> {
  const server = nat!.turn.server;
  const r = await node.site.host.exec('timeout', ['10', 'turnutils_uclient', '-y', '-n', '1', '-m', '1', '-l', '100',
    '-u', username, '-w', password, '-p', String(server.port), server.address], { allowFailure: true });
  return r.exitCode;
}

async function pathOf(from: AgentNode, to: AgentNode): Promise<string | undefined> {
  return (await lab!.status(from)).peers.find((p) => p.node === to.name)?.path;
}

describe('TURN credentials issued per node', () => {
  it('relays with expiring per-node credentials: waits for its own, reads no other, moves to a fresh one before expiry', async () => {
    nat = await NatLab.create();
    await nat.useTurnSecret(SECRET);
    lab = await AgentLab.create(nat, { auth: true });
    const a = await lab.addNode('home-router', 'cred-a');
    const b = await lab.addNode('symmetric', 'cred-b');
    for (const n of [a, b]) lab.configure(n, { turn: { server: formatEndpoint(nat.turn.server), issued: true } });
    await Promise.all([lab.start(a), lab.start(b)]);

    // No credential issued yet: no relay, and status says why there is no path.
    await waitFor('both agents to know each other', async () => (await pathOf(a, b)) !== undefined && (await pathOf(b, a)) !== undefined, 30_000, 200);
    expect((await lab.status(a)).relay).toBeUndefined();
    expect(lab.log(a)).toMatch(/no TURN credential issued to this node yet/);

    const t0 = Date.now();
    issuer = await startIssuer(lab);
    await waitFor('a to reach b through the relay', () => lab!.ping(a, b.hostAddress, 1), 60_000, 200);
    const connectedMs = Date.now() - t0;
    await waitFor('both to show the relayed path', async () => (await pathOf(a, b)) === 'relayed' && (await pathOf(b, a)) === 'relayed', 20_000, 200);
    const before = await Promise.all([lab.status(a), lab.status(b)]);
    for (const s of before) expect(s.relayCredentialExpires, s.node).toBeDefined();

    // Each node reads its own credential and no other; the credential is what coturn takes.
    const keys = keyLayout('/warren');
    const own = await lab.etcdctlAs(a, ['get', '--print-value-only', keys.turnCredential('cred-a')]);
    expect(own.exitCode).toBe(0);
    const credential = JSON.parse(own.stdout) as { username: string; password: string };
    expect(credential.username).toMatch(/^\d+:cred-a$/);
    const other = await lab.etcdctlAs(a, ['get', keys.turnCredential('cred-b')]);
    expect(other.exitCode).not.toBe(0);
    expect(other.stderr).toMatch(/permission denied/);
    expect(await allocateAs(a, credential.username, credential.password)).toBe(0);
    // Refused by coturn: the same credential expired, a forged password, the static user of before.
    const expired = issueTurnCredential(SECRET, 'cred-a', new Date(Date.now() - 2 * TTL_SEC * 1000), TTL_SEC);
    expect(await allocateAs(a, expired.username, expired.password)).not.toBe(0);
    expect(await allocateAs(a, credential.username, 'forged')).not.toBe(0);
    expect(await allocateAs(a, nat.turn.username, nat.turn.password)).not.toBe(0);

    // Rotation: 45 s after issue each agent moves to a new allocation under the renewed credential.
    const loop = seqPing(a, b.hostAddress);
    await loop.answering;
    await waitFor('both agents on new allocations', async () => {
      const now = await Promise.all([lab!.status(a), lab!.status(b)]);
      return now.every((s, i) => s.relay !== undefined && s.relay !== before[i]!.relay && s.relayCredentialExpires !== before[i]!.relayCredentialExpires);
    }, TTL_SEC * 1000, 500);
    const rotatedMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, answered, longestGapMs } = await loop.stop();
    console.log(`issued TURN credentials: relayed pair connected ${connectedMs} ms after the issuer started; both moved to new allocations ` +
      `${rotatedMs} ms after it (TTL ${TTL_SEC} s); across the move ${sent} pings every 20 ms, ${sent - answered} lost, longest gap ${longestGapMs} ms`);
    expect(await pathOf(a, b)).toBe('relayed');
    expect(longestGapMs).toBeLessThan(5000);
    expect(lab.log(a)).toMatch(/moving the relay to a new TURN allocation/);

    // A restarted agent resumes the allocation with the credential saved beside it (relay.json, 0600).
    const relayBefore = (await lab.status(a)).relay;
    await lab.stop(a);
    await lab.start(a);
    expect((await lab.status(a)).relay).toBe(relayBefore);
    expect(lab.log(a)).toMatch(/resumed the previous agent's TURN allocation/);
    await waitFor('a to reach b after its restart', () => lab!.ping(a, b.hostAddress, 1), 20_000, 200);

    // The issuer stops on SIGTERM.
    issuer.child.kill('SIGTERM');
    expect(await issuer.exited).toBe(143);
  }, 240_000);
});
