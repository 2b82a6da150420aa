// The VICI client driving real charons: two namespaces joined by a veth, an initiator that
// asks for a virtual IP and a responder with a one-address pool, certificate auth, the
// data path through kernel-libipsec (this kernel has no ESP).
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ViciClient, ViciCommandError, ViciConnectionError, ViciTimeoutError, ViciUnknownError } from '../../../../node-agent/gateway/vici/client.js';
import type { ViciInput, ViciMessage } from '../../../../node-agent/gateway/vici/codec.js';
import { Charon, makeIkePki, type IkePki } from '../../../helpers/charon.js';
import { Netns } from '../../../helpers/netns.js';
import { run } from '../../../helpers/sh.js';

const A = { id: 'a.warren.test', addr: '192.0.2.1' };
const B = { id: 'b.warren.test', addr: '192.0.2.2', subnet: '10.98.0.0/24', host: '10.98.0.1' };
const VIP = '10.99.0.1';
// MODP and CBC because gmp is the only DH/RSA provider here (node-agent/gateway/charon.ts says why).
const IKE_PROPOSALS = ['aes128-sha256-modp2048'];
const ESP_PROPOSALS = ['aes128-sha256'];

const section = (m: ViciMessage | undefined, key: string): ViciMessage => (m?.[key] ?? {}) as ViciMessage;

/** Events as they arrive, and a promise for the first one matching, without polling. */
class EventLog {
  readonly seen: { event: string; message: ViciMessage }[] = [];
  private waiters: { match: (event: string, m: ViciMessage) => boolean; resolve: (m: ViciMessage) => void }[] = [];
  readonly listener = (message: ViciMessage, event: string): void => {
    this.seen.push({ event, message });
    const matched = this.waiters.filter((w) => w.match(event, message));
    this.waiters = this.waiters.filter((w) => !matched.includes(w));
    for (const w of matched) w.resolve(message);
  };

  next(what: string, match: (event: string, m: ViciMessage) => boolean, timeoutMs = 30_000): Promise<ViciMessage> {
    const already = this.seen.find((s) => match(s.event, s.message));
    if (already) return Promise.resolve(already.message);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; saw ${this.seen.map((s) => s.event).join(', ')}`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
}

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  const errors: unknown[] = [];
  for (const undo of cleanups.reverse()) await Promise.resolve().then(undo).catch((err: unknown) => errors.push(err));
  if (errors.length) throw errors[0];
});

let pki: IkePki;
let nsA: Netns;
let nsB: Netns;
let charonA: Charon;
let charonB: Charon;
let a: ViciClient;
let b: ViciClient;

beforeAll(async () => {
  pki = await makeIkePki([A.id, B.id]);
  cleanups.push(() => pki.remove());
  nsA = await Netns.create('via');
  cleanups.push(() => nsA.destroy());
  nsB = await Netns.create('vib');
  cleanups.push(() => nsB.destroy());
  await run('ip', ['-n', nsA.name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', nsB.name]);
  for (const [ns, addr] of [[nsA, A.addr], [nsB, B.addr]] as const) {
    await run('ip', ['-n', ns.name, 'addr', 'add', `${addr}/24`, 'dev', 'veth0']);
    await run('ip', ['-n', ns.name, 'link', 'set', 'veth0', 'up']);
  }
  // The responder's protected subnet: one address to ping.
  await run('ip', ['-n', nsB.name, 'addr', 'add', `${B.host}/32`, 'dev', 'lo']);
  charonA = await Charon.start(nsA);
  cleanups.push(() => charonA.stop());
  charonB = await Charon.start(nsB);
  cleanups.push(() => charonB.stop());
  a = await ViciClient.connect(charonA.socketPath);
  cleanups.push(() => a.close());
  b = await ViciClient.connect(charonB.socketPath);
  cleanups.push(() => b.close());
});

function conn(local: typeof A, remote: { id?: string; addr?: string }, extra: ViciInput, child: ViciInput): ViciInput {
  const identity = pki.identities.get(local.id)!;
  return {
    local_addrs: [local.addr],
    remote_addrs: remote.addr ? [remote.addr] : undefined,
    // kernel-libipsec carries ESP only inside UDP: force encapsulation although no NAT is in the way.
    encap: true,
    proposals: IKE_PROPOSALS,
    local: { auth: 'pubkey', certs: [new X509Certificate(identity.certPem).raw], id: local.id },
    remote: { auth: 'pubkey', id: remote.id },
    ...extra,
    children: { net: { esp_proposals: ESP_PROPOSALS, ...child } },
  };
}

async function loadCredentials(client: ViciClient, id: string): Promise<void> {
  const identity = pki.identities.get(id)!;
  // Certificates as DER bytes (binary values on the wire), the key as PEM text, as swanctl does.
  await client.request('load-cert', { type: 'X509', flag: 'CA', data: new X509Certificate(pki.caPem).raw });
  await client.request('load-cert', { type: 'X509', flag: 'NONE', data: new X509Certificate(identity.certPem).raw });
  await client.request('load-key', { type: 'any', data: identity.keyPem });
}

describe('VICI client against charon 5.9.8', () => {
  it('answers version, pairs queued requests with their own responses, and types unknown commands and events', async () => {
    expect(await a.request('version')).toMatchObject({ daemon: 'charon', version: '5.9.8', sysname: 'Linux' });
    const [version, conns, listed, stats] = await Promise.all([
      a.request('version'), a.request('get-conns'), a.list('list-conns'), a.request('stats'),
    ]);
    expect(version.daemon).toBe('charon');
    expect(conns).toEqual({ conns: [] });
    expect(listed).toEqual([]);
    expect(stats.plugins).toEqual(expect.arrayContaining(['kernel-libipsec', 'kernel-netlink', 'vici']));

    const unknownCommand = await a.request('no-such-command').catch((err: unknown) => err);
    expect(unknownCommand).toBeInstanceOf(ViciUnknownError);
    expect(unknownCommand).toMatchObject({ code: 'VICI_UNKNOWN', kind: 'command', operation: 'no-such-command' });
    const unknownEvent = await a.subscribe('no-such-event', () => undefined).catch((err: unknown) => err);
    expect(unknownEvent).toMatchObject({ code: 'VICI_UNKNOWN', kind: 'event', operation: 'no-such-event' });
    expect((await a.request('version')).daemon).toBe('charon');
  });

  it("rejects a bad load-conn with ViciCommandError carrying strongSwan's errmsg", async () => {
    const bad = conn(B, {}, {}, { local_ts: [B.subnet] });
    const err = await b.request('load-conn', { broken: { ...bad, proposals: ['aes128-nosuchalg-modp2048'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ViciCommandError);
    expect(err).toMatchObject({ code: 'VICI_COMMAND_FAILED', command: 'load-conn', errmsg: 'invalid value for: proposals, config discarded' });
    expect((err as Error).message).toBe('vici load-conn failed: invalid value for: proposals, config discarded');
    expect((await b.request('get-conns')).conns).not.toContain('broken');
  });

  it('brings up a tunnel: up events, the virtual IP in list-sas, a ping through libipsec, down events', async () => {
    await loadCredentials(a, A.id);
    await loadCredentials(b, B.id);
    const certs = await a.list('list-certs', { type: 'X509' });
    expect(certs.map((c) => [new X509Certificate(c.data as Buffer).subject, c.flag, c.has_privkey])).toEqual(expect.arrayContaining([
      [`CN=${A.id}`, 'NONE', 'yes'], ['CN=warren-test-ca', 'CA', undefined],
    ]));

    await b.request('load-pool', { edgepool: { addrs: `${VIP}/32` } });
    await b.request('load-conn', { edge: conn(B, {}, { pools: ['edgepool'] }, { local_ts: [B.subnet] }) });
    await a.request('load-conn', { hub: conn(A, B, { vips: ['0.0.0.0'] }, { remote_ts: [B.subnet] }) });
    expect(await a.request('get-conns')).toEqual({ conns: ['hub'] });

    const events = new EventLog();
    const unsubscribe = [await a.subscribe('ike-updown', events.listener), await a.subscribe('child-updown', events.listener)];
    const { events: controlLog, response } = await a.stream('initiate', 'control-log',
      { ike: 'hub', child: 'net', timeout: 30_000, loglevel: 1 }, { timeoutMs: 40_000 });
    expect(response).toEqual({ success: 'yes' });
    expect(controlLog.map((m) => m.msg)).toContainEqual(
      expect.stringMatching(/^CHILD_SA net\{\d+\} established with SPIs \w+_i \w+_o and TS 10\.99\.0\.1\/32 === 10\.98\.0\.0\/24$/));

    const ikeUp = await events.next('ike-updown up', (e, m) => e === 'ike-updown' && m.up === 'yes');
    expect(section(ikeUp, 'hub')).toMatchObject({ state: 'ESTABLISHED', 'local-host': A.addr, 'remote-host': B.addr, 'remote-id': B.id, 'local-vips': [VIP] });
    const childUp = await events.next('child-updown up', (e, m) => e === 'child-updown' && m.up === 'yes');
    expect(Object.values(section(section(childUp, 'hub'), 'child-sas'))).toEqual([
      expect.objectContaining({ name: 'net', state: 'INSTALLED', encap: 'yes', 'local-ts': [`${VIP}/32`], 'remote-ts': [B.subnet] }),
    ]);

    const [sa] = await a.list('list-sas', { ike: 'hub' });
    expect(section(sa, 'hub')).toMatchObject({ state: 'ESTABLISHED', 'local-vips': [VIP] });
    const [remoteSa] = await b.list('list-sas');
    expect(section(remoteSa, 'edge')).toMatchObject({ state: 'ESTABLISHED', 'remote-id': A.id, 'remote-vips': [VIP] });
    const addrs = JSON.parse(await run('ip', ['-n', nsA.name, '-j', 'addr', 'show', 'dev', 'ipsec0'])) as { addr_info: { local: string }[] }[];
    expect(addrs[0]!.addr_info.map((x) => x.local)).toContain(VIP);

    // The counters prove the ping went through the SA, not around it.
    const counters = async (): Promise<number[]> => {
      const [s] = await a.list('list-sas', { ike: 'hub' });
      const child = Object.values(section(section(s, 'hub'), 'child-sas'))[0] as ViciMessage;
      return [Number(child['packets-out']), Number(child['packets-in'])];
    };
    const [outBefore, inBefore] = await counters();
    await run('ip', ['netns', 'exec', nsA.name, 'ping', '-c', '3', '-i', '0.2', '-W', '5', B.host]);
    const [outAfter, inAfter] = await counters();
    expect(outAfter! - outBefore!).toBeGreaterThanOrEqual(3);
    expect(inAfter! - inBefore!).toBeGreaterThanOrEqual(3);

    // Down events carry no "up" key at all (not "up = no").
    expect(await a.request('terminate', { ike: 'hub', timeout: 20_000 }, { timeoutMs: 30_000 })).toMatchObject({ success: 'yes' });
    const ikeDown = await events.next('ike-updown down', (e, m) => e === 'ike-updown' && m.up === undefined);
    expect(section(ikeDown, 'hub').state).toBe('DELETING');
    await events.next('child-updown down', (e, m) => e === 'child-updown' && m.up === undefined);
    expect(await a.list('list-sas')).toEqual([]);
    for (const off of unsubscribe) await off();
  });

  it('surfaces a timeout and a lost connection as typed errors on every pending call', async () => {
    // A charon of its own: this test stops it. Its peer's address is on a link where nobody
    // answers (not on lo: a prefix on lo is local as a whole, and charon would answer
    // itself), so initiate blocks while charon retransmits.
    const nsC = await Netns.create('vic');
    cleanups.push(() => nsC.destroy());
    await run('ip', ['-n', nsC.name, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    await run('ip', ['-n', nsC.name, 'addr', 'add', '198.51.100.1/24', 'dev', 'veth0']);
    for (const dev of ['veth0', 'veth1']) await run('ip', ['-n', nsC.name, 'link', 'set', dev, 'up']);
    const charonC = await Charon.start(nsC);
    cleanups.push(() => charonC.stop());
    // One peer address each: with the same peer and IKE settings, charon queued the second
    // connection's child on the first one's half-open IKE_SA, whatever the names.
    const nowhere = (name: string, peer: string): ViciInput => ({
      [name]: { remote_addrs: [peer], local: { auth: 'psk' }, remote: { auth: 'psk' }, children: { net: { remote_ts: ['10.0.0.0/24'] } } },
    });

    const first = await ViciClient.connect(charonC.socketPath);
    cleanups.push(() => first.close());
    await first.request('load-conn', nowhere('nowhere1', '198.51.100.98'));
    const timedOut = await first.request('initiate', { ike: 'nowhere1', child: 'net' }, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ViciTimeoutError);
    expect(timedOut).toMatchObject({ code: 'VICI_TIMEOUT', operation: 'initiate', timeoutMs: 500 });
    // A late response would be taken for the next request's: the client closes instead.
    expect(await first.closed).toMatchObject({ code: 'VICI_CONNECTION', cause: timedOut });
    await expect(first.request('version')).rejects.toBeInstanceOf(ViciConnectionError);

    const second = await ViciClient.connect(charonC.socketPath);
    cleanups.push(() => second.close());
    await second.request('load-conn', nowhere('nowhere2', '198.51.100.99'));
    const log = new EventLog();
    await second.subscribe('control-log', log.listener);
    const blocked = second.request('initiate', { ike: 'nowhere2', child: 'net', loglevel: 0 }, { timeoutMs: 60_000 }).catch((e: unknown) => e);
    const queued = second.request('version').catch((e: unknown) => e);
    await log.next('charon initiating nowhere2', (_, m) => String(m.msg).startsWith('initiating IKE_SA nowhere2'));
    // A crash: a graceful stop would first answer the initiate with success = no.
    await charonC.stop('SIGKILL');
    for (const err of [await blocked, await queued]) {
      expect(err).toBeInstanceOf(ViciConnectionError);
      expect((err as Error).message).toBe(`vici ${charonC.socketPath}: charon closed the connection`);
    }
    expect(await second.closed).toBeInstanceOf(ViciConnectionError);
    await expect(ViciClient.connect(charonC.socketPath)).rejects.toMatchObject({ code: 'VICI_CONNECTION', message: expect.stringMatching(/cannot connect/) });
  });
});
