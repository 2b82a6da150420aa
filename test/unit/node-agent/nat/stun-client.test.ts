import { describe, expect, it } from 'vitest';
import { StunErrorResponse, StunTimeoutError } from '../../../../node-agent/nat/errors.js';
import { classifyMapping, probeMapping, stunBinding } from '../../../../node-agent/nat/stun-client.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { retransmitSchedule } from '../../../../node-agent/nat/stun-transaction.js';
import { bindingSuccess, decodeStun, encodeStun, errorCodeAttr } from '../../../../node-agent/nat/stun.js';
import { FakePort, FakeTimers, type Reply } from './fake-net.js';

const server = { address: '192.0.2.10', port: 3478 };
const other = { address: '192.0.2.11', port: 3478 };
const otherPort = { address: '192.0.2.11', port: 3479 };

function answer(data: Buffer, to: Endpoint, mapped: Endpoint): Reply[] {
  return [{ data: encodeStun(bindingSuccess(decodeStun(data), mapped)), from: to }];
}

describe('retransmission schedule (RFC 8489 section 6.2.1)', () => {
  it('matches the RFC example: 0, 500, 1500, ..., 31500 ms, failure at 39500 ms', () => {
    expect(retransmitSchedule({ rtoMs: 500, maxTransmissions: 7, lastWaitMultiplier: 16 })).toEqual({
      sendAtMs: [0, 500, 1500, 3500, 7500, 15500, 31500],
      giveUpAtMs: 39500,
    });
    expect(retransmitSchedule({ rtoMs: 100, maxTransmissions: 1, lastWaitMultiplier: 4 })).toEqual({ sendAtMs: [0], giveUpAtMs: 400 });
    expect(() => retransmitSchedule({ rtoMs: 0, maxTransmissions: 7, lastWaitMultiplier: 16 })).toThrow(RangeError);
  });
});

describe('stunBinding', () => {
  it('sends once over a reliable port (TCP or TLS) and waits as long in all (RFC 8489 section 6.2.2)', async () => {
    const timers = new FakeTimers();
    const port = Object.assign(new FakePort(timers), { reliable: true as const });
    const outcome = stunBinding(port, server, { timers }).then(() => 'resolved', (e: unknown) => e);
    await timers.advance(39_499);
    expect(port.sent.map((s) => s.at)).toEqual([0]);
    await timers.advance(1);
    expect(await outcome).toMatchObject({ code: 'STUN_TIMEOUT', transmissions: 1, waitedMs: 39_500 });
  });

  it('retransmits on the schedule and fails with StunTimeoutError at the deadline, not before', async () => {
    const timers = new FakeTimers();
    const port = new FakePort(timers);
    const outcome = stunBinding(port, server, { timers }).then(() => 'resolved', (e: unknown) => e);
    await timers.advance(39_499);
    expect(port.sent.map((s) => s.at)).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(new Set(port.sent.map((s) => s.data.toString('hex'))).size).toBe(1); // same transaction each time
    await timers.advance(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(StunTimeoutError);
    expect(err).toMatchObject({ code: 'STUN_TIMEOUT', transmissions: 7 });
    expect(port.listenerCount).toBe(0);
    expect(timers.pending).toBe(0);
  });

  it('takes the first response after a loss and stops retransmitting', async () => {
    const timers = new FakeTimers();
    let seen = 0;
    const port = new FakePort(timers, (data, to) => (++seen === 2 ? answer(data, to, { address: '203.0.113.5', port: 40001 }) : []));
    const result = stunBinding(port, server, { timers });
    await timers.advance(500);
    await expect(result).resolves.toMatchObject({ mapped: { address: '203.0.113.5', port: 40001 }, transmissions: 2, rttMs: 500, server });
    await timers.advance(60_000);
    expect(port.sent).toHaveLength(2);
    expect(timers.pending).toBe(0);
  });

  it('ignores responses from another address or with another transaction id', async () => {
    const timers = new FakeTimers();
    const port = new FakePort(timers, (data, to) => {
      const request = decodeStun(data);
      const forged = { ...request, transactionId: Buffer.alloc(12, 7) };
      return [
        { data: encodeStun(bindingSuccess(request, { address: '203.0.113.66', port: 1 })), from: other },
        { data: encodeStun(bindingSuccess(forged, { address: '203.0.113.66', port: 2 })), from: to },
      ];
    });
    const outcome = stunBinding(port, server, { timers, retransmit: { maxTransmissions: 2 } }).catch((e: unknown) => e);
    await timers.advance(500 + 8000);
    expect(await outcome).toBeInstanceOf(StunTimeoutError);
  });

  it('turns an error response into StunErrorResponse with its code', async () => {
    const timers = new FakeTimers();
    const port = new FakePort(timers, (data, to) => {
      const request = decodeStun(data);
      return [{ data: encodeStun({ ...request, cls: 'error', attributes: [errorCodeAttr(420, 'Unknown Attribute')] }), from: to }];
    });
    const err = await stunBinding(port, server, { timers }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StunErrorResponse);
    expect(err).toMatchObject({ errorCode: 420, reason: 'Unknown Attribute' });
  });
});

describe('mapping behaviour', () => {
  const m = (port: number): Endpoint => ({ address: '203.0.113.5', port });

  it('classifies from RFC 5780 tests I, II and III', () => {
    expect(classifyMapping([{ server, mapped: m(1) }, { server: other, mapped: m(1) }])).toBe('endpoint-independent');
    expect(classifyMapping([{ server, mapped: m(1) }, { server: other, mapped: m(2) }])).toBe('endpoint-dependent');
    expect(classifyMapping([{ server, mapped: m(1) }, { server: other, mapped: m(2) }, { server: otherPort, mapped: m(2) }])).toBe('address-dependent');
    expect(classifyMapping([{ server, mapped: m(1) }, { server: other, mapped: m(2) }, { server: otherPort, mapped: m(3) }])).toBe('address-and-port-dependent');
    expect(() => classifyMapping([{ server, mapped: m(1) }, { server: { ...server, port: 3479 }, mapped: m(1) }])).toThrow(RangeError);
  });

  it('probeMapping asks each server from the same port', async () => {
    const timers = new FakeTimers();
    let next = 40000;
    const symmetric = new FakePort(timers, (data, to) => answer(data, to, m(next++)));
    const report = await probeMapping(symmetric, [server, other, otherPort], { timers });
    expect(report.behavior).toBe('address-and-port-dependent');
    expect(report.probes.map((p) => p.mapped.port)).toEqual([40000, 40001, 40002]);
    expect(symmetric.sent.map((s) => s.to)).toEqual([server, other, otherPort]);
  });
});
