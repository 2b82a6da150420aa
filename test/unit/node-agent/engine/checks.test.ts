// Connectivity checks on fake ports: what goes on the wire, what counts as a success, and
// that nothing a stranger sends can throw or count.
import { describe, expect, it } from 'vitest';
import { CHECK_ANSWER_WINDOW_MS, TRIGGERED_CHECK_HOLDOFF_MS } from '../../../../node-agent/engine/knobs.js';
import { Checks, checkRequest, parseCheckUsername } from '../../../../node-agent/engine/checks.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { stunBinding } from '../../../../node-agent/nat/stun-client.js';
import {
  bindingRequest, bindingSuccess, decodeStun, encodeStun, getText, hasValidFingerprint, parseBindingSuccess, StunAttr, textAttr, type DecodedStun,
} from '../../../../node-agent/nat/stun.js';
import type { UdpPort } from '../../../../node-agent/nat/udp.js';
import { FakePort, FakeTimers, settle } from '../nat/fake-net.js';

const peerB: Endpoint = { address: '198.51.100.10', port: 51820 };
const peerBLocal: Endpoint = { address: '10.2.0.2', port: 51820 };

function setup() {
  const timers = new FakeTimers();
  const port = new FakePort(timers);
  const checks = new Checks({ selfNode: 'a', port, timers });
  const sent = (): { msg: DecodedStun; to: Endpoint }[] => port.sent.map((s) => ({ msg: decodeStun(s.data), to: s.to }));
  return { timers, port, checks, sent };
}

/** The answer a peer's agent gives to request `msg` seen from `source`. */
const answer = (msg: DecodedStun, source: Endpoint): Buffer => encodeStun(bindingSuccess(msg, source), { fingerprint: true });

describe('Checks', () => {
  it('sends one Binding request per endpoint, USERNAME "<peer>:<self>", and records the endpoint that answers', async () => {
    const { timers, port, checks, sent } = setup();
    checks.check('b', [peerBLocal, peerB]);
    await settle();
    const out = sent();
    expect(out.map((s) => s.to)).toEqual([peerBLocal, peerB]);
    for (const { msg } of out) {
      expect(msg).toMatchObject({ method: 0x001, cls: 'request' });
      expect(getText(msg, StunAttr.Username)).toBe('b:a');
      expect(hasValidFingerprint(msg)).toBe(true);
    }
    expect(out[0]!.msg.transactionId.equals(out[1]!.msg.transactionId)).toBe(false);
    expect(checks.lastSuccess('b')).toBeUndefined();

    await timers.advance(30);
    port.deliver(answer(out[1]!.msg, { address: '203.0.113.1', port: 51820 }), peerB);
    expect(checks.lastSuccess('b')).toEqual({ endpoint: peerB, at: 30 });
    expect(checks.counters()).toMatchObject({ sent: 2, answered: 1, served: 0 });
  });

  it('ignores an answer from elsewhere than where the check went, a repeated answer, and one after the window', async () => {
    const { timers, port, checks, sent } = setup();
    checks.check('b', [peerB, peerBLocal]);
    await settle();
    const [toB, toLocal] = sent();
    port.deliver(answer(toB!.msg, peerB), { address: '198.51.100.10', port: 40000 }); // same address, other port
    expect(checks.lastSuccess('b')).toBeUndefined();
    await timers.advance(CHECK_ANSWER_WINDOW_MS);
    port.deliver(answer(toLocal!.msg, peerB), peerBLocal);
    expect(checks.lastSuccess('b')).toBeUndefined();
    port.deliver(answer(toB!.msg, peerB), peerB);
    expect(checks.lastSuccess('b')).toBeUndefined();
    expect(checks.counters()).toMatchObject({ answered: 0, notForUs: 3 });
  });

  it('answers a check for this node with the source as XOR-MAPPED-ADDRESS, then checks back (triggered); only the answer to that counts', async () => {
    const { port, checks, sent } = setup();
    const source = { address: '198.51.100.22', port: 34567 };
    const request = encodeStun(checkRequest('a', 'b'), { fingerprint: true });
    port.deliver(request, source);
    expect(checks.lastSuccess('b')).toBeUndefined(); // a request proves one direction only
    await settle();
    const [reply, triggered] = sent();
    expect(reply!.to).toEqual(source);
    expect(reply!.msg.cls).toBe('success');
    expect(reply!.msg.transactionId.equals(decodeStun(request).transactionId)).toBe(true);
    expect(parseBindingSuccess(reply!.msg).mapped).toEqual(source);
    expect(triggered!.to).toEqual(source);
    expect(triggered!.msg.cls).toBe('request');
    expect(getText(triggered!.msg, StunAttr.Username)).toBe('b:a');

    port.deliver(answer(triggered!.msg, { address: '198.51.100.6', port: 51820 }), source);
    expect(checks.lastSuccess('b')?.endpoint).toEqual(source);
    expect(checks.counters()).toMatchObject({ served: 1, triggered: 1, answered: 1 });
  });

  it('sends no triggered check while one went to that source recently, or an answer came from it', async () => {
    const { timers, port, checks, sent } = setup();
    const request = (): Buffer => encodeStun(checkRequest('a', 'b'));
    port.deliver(request(), peerB);
    port.deliver(request(), peerB);
    await settle();
    expect(sent().map((s) => s.msg.cls)).toEqual(['success', 'request', 'success']);
    port.deliver(answer(sent()[1]!.msg, peerB), peerB);
    await timers.advance(TRIGGERED_CHECK_HOLDOFF_MS - 1);
    port.deliver(request(), peerB);
    await settle();
    expect(sent().filter((s) => s.msg.cls === 'request')).toHaveLength(1);
    await timers.advance(1);
    port.deliver(request(), peerB);
    await settle();
    expect(sent().filter((s) => s.msg.cls === 'request')).toHaveLength(2);
  });

  it('leaves checks for another node, without USERNAME, or from itself unanswered', async () => {
    const { port, checks } = setup();
    const withName = (name: string): Buffer => encodeStun({ ...bindingRequest(), attributes: [textAttr(StunAttr.Username, name)] });
    for (const data of [withName('c:b'), withName('a'), withName('a:'), withName(':b'), withName('a:b:c'), withName('a:a'), encodeStun(bindingRequest())]) {
      port.deliver(data, peerB);
    }
    await settle();
    expect(port.sent).toEqual([]);
    expect(checks.counters()).toMatchObject({ notForUs: 7, served: 0 });
  });

  it('never throws on a malformed datagram, and counts it', async () => {
    const { port, checks } = setup();
    const good = encodeStun(checkRequest('a', 'b'), { fingerprint: true });
    const overrun = Buffer.from(good);
    overrun.writeUInt16BE(0xfff0, 22); // USERNAME's length runs past the message
    const badFingerprint = Buffer.from(good);
    badFingerprint[badFingerprint.length - 1]! ^= 0xff;
    const badAddress = encodeStun({ ...bindingSuccess(bindingRequest(), peerB), attributes: [{ type: StunAttr.XorMappedAddress, value: Buffer.from([0, 9]) }] });
    expect(() => port.deliver(overrun, peerB)).not.toThrow();
    expect(() => port.deliver(badFingerprint, peerB)).not.toThrow();
    expect(() => port.deliver(badAddress, peerB)).not.toThrow();
    expect(() => port.deliver(Buffer.from('warren-punch'), peerB)).not.toThrow();
    expect(() => port.deliver(Buffer.alloc(0), peerB)).not.toThrow();
    await settle();
    expect(port.sent).toEqual([]);
    expect(checks.counters()).toMatchObject({ malformed: 2, notForUs: 1, notStun: 2, served: 0 });
  });

  it('shares the socket with the prober\'s STUN client: each keeps its own transactions', async () => {
    const timers = new FakeTimers();
    const server = { address: '192.0.2.10', port: 3478 };
    const reflexive = { address: '198.51.100.6', port: 51820 };
    const port = new FakePort(timers, (data, to) => {
      const msg = decodeStun(data);
      if (to.port === server.port) return [{ data: encodeStun(bindingSuccess(msg, reflexive)), from: server }];
      return [{ data: answer(msg, reflexive), from: to }];
    });
    const checks = new Checks({ selfNode: 'a', port, timers });
    const binding = stunBinding(port, server, { timers });
    checks.check('b', [peerB]);
    expect((await binding).mapped).toEqual(reflexive);
    await settle();
    expect(checks.lastSuccess('b')?.endpoint).toEqual(peerB);
    expect(checks.counters()).toMatchObject({ answered: 1, notForUs: 1 });
  });

  it('keeps the latest answer of each endpoint: a later answer from elsewhere does not hide the first', async () => {
    const { port, checks, sent, timers } = setup();
    const other = { address: '10.9.0.1', port: 51820 };
    checks.check('b', [peerB, other]);
    port.deliver(answer(sent()[0]!.msg, peerB), peerB);
    await timers.advance(10);
    port.deliver(answer(sent()[1]!.msg, other), other);
    await settle();
    expect(checks.successesOf('b').map((s) => s.endpoint)).toEqual([peerB, other]);
    expect(checks.lastSuccess('b')?.endpoint).toEqual(other);
  });

  it('forgets a peer: its answers no longer count', async () => {
    const { port, checks, sent } = setup();
    checks.check('b', [peerB]);
    await settle();
    checks.forget('b');
    port.deliver(answer(sent()[0]!.msg, peerB), peerB);
    expect(checks.lastSuccess('b')).toBeUndefined();
  });

  it('two agents on a wire: one check makes both sides succeed, and the exchange stops by itself', async () => {
    const timers = new FakeTimers();
    const ends: Record<string, { port: UdpPort; at: Endpoint; listeners: Set<(d: Buffer, f: Endpoint) => void>; count: number }> = {};
    const wire = (name: string, at: Endpoint): UdpPort => {
      const listeners = new Set<(d: Buffer, f: Endpoint) => void>();
      const port: UdpPort = {
        send: async (data, to) => {
          ends[name]!.count++;
          const far = Object.values(ends).find((e) => e.at.address === to.address && e.at.port === to.port);
          if (far) queueMicrotask(() => far.listeners.forEach((l) => l(data, at)));
        },
        onMessage: (l) => (listeners.add(l), () => listeners.delete(l)),
      };
      ends[name] = { port, at, listeners, count: 0 };
      return port;
    };
    const atA = { address: '198.51.100.6', port: 51820 };
    const a = new Checks({ selfNode: 'a', port: wire('a', atA), timers });
    const b = new Checks({ selfNode: 'b', port: wire('b', peerB), timers });
    a.check('b', [peerB]);
    await timers.advance(10);
    expect(a.lastSuccess('b')?.endpoint).toEqual(peerB);
    expect(b.lastSuccess('a')?.endpoint).toEqual(atA);
    // a: check, answer to b's triggered check; b: answer, triggered check. Nothing more.
    expect([ends.a!.count, ends.b!.count]).toEqual([2, 2]);
  });
});

describe('parseCheckUsername', () => {
  it('splits "<to>:<from>" and refuses anything else', () => {
    expect(parseCheckUsername('node-1:node-2')).toEqual({ to: 'node-1', from: 'node-2' });
    for (const bad of [undefined, '', 'a', ':a', 'a:', 'a:b:c']) expect(parseCheckUsername(bad)).toBeUndefined();
  });
});
