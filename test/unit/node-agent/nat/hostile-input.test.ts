// Everything the agent's UDP port hears is attacker-controlled. Property-based (fast-check):
// random datagrams and real coturn datagrams mutated (bytes flipped, cut short, lengths
// rewritten) go through every decoder and accessor the receive paths use. Each either
// answers or throws StunDecodeError, the one class the receive loops drop as "malformed";
// any other exception (a RangeError from a buffer read, a TypeError) would be a parser bug
// that the loops' catch-alls would hide.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { longTermKey } from '../../../../node-agent/nat/stun-integrity.js';
import { StunDecodeError } from '../../../../node-agent/nat/errors.js';
import {
  decodeStun, encodeStun, getErrorCode, getMappedAddress, getText, hasValidFingerprint, hasValidIntegrity, isStun, parseBindingSuccess, StunAttr,
  type StunClass,
} from '../../../../node-agent/nat/stun.js';
import { decodeChannelData, getLifetime, isChannelData, parseAllocateSuccess, parsePeerData } from '../../../../node-agent/nat/turn.js';
import * as coturn from './fixtures/coturn-4.6.1.js';

const RUNS = 2_000;
let cases = 0;
const KEY = longTermKey('user', 'realm', 'pass');
const CAPTURED = [coturn.BINDING_SUCCESS, coturn.ALLOCATE_SUCCESS, coturn.CREATE_PERMISSION_SUCCESS, coturn.DATA_INDICATION,
  coturn.CHANNEL_BIND_SUCCESS, coturn.CHANNEL_DATA, coturn.REFRESH_SUCCESS].map((hex) => Buffer.from(hex, 'hex'));

/** What the receive paths do with a datagram; only StunDecodeError may escape. */
function readLikeTheAgent(datagram: Buffer): void {
  cases++;
  if (isChannelData(datagram)) decodeChannelData(datagram);
  if (!isStun(datagram)) return;
  const msg = decodeStun(datagram);
  hasValidFingerprint(msg);
  hasValidIntegrity(msg, KEY);
  getText(msg, StunAttr.Software);
  const accessors = [() => getErrorCode(msg), () => getMappedAddress(msg), () => parseBindingSuccess(msg), () => getLifetime(msg),
    () => parseAllocateSuccess(msg), () => parsePeerData(msg)];
  for (const read of accessors) {
    try {
      read();
    } catch (err) {
      if (!(err instanceof StunDecodeError)) throw err;
    }
  }
}

function onlyDecodeErrors(datagram: Buffer): boolean {
  try {
    readLikeTheAgent(datagram);
  } catch (err) {
    if (!(err instanceof StunDecodeError)) throw err;
  }
  return true;
}

/** A captured datagram with some bytes replaced, cut at some length, or a 16-bit length field rewritten. */
const mutated = fc.record({
  base: fc.constantFrom(...CAPTURED),
  flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
  cut: fc.option(fc.nat()),
  length: fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0xffff }))),
}).map(({ base, flips, cut, length }) => {
  const b = Buffer.from(base);
  for (const [at, value] of flips) b[at % b.length] = value;
  if (length) b.writeUInt16BE(length[1], (length[0] % (b.length - 1)) & ~1);
  return cut === null ? b : b.subarray(0, cut % (b.length + 1));
});

/** A random datagram that passes isStun's header test: a STUN header with a random body. */
const stunShaped = fc.tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 300 }))
  .map(([type, id, body]) => {
    const padded = Buffer.concat([Buffer.from(body), Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const header = Buffer.alloc(20);
    header.writeUInt16BE(type, 0);
    header.writeUInt16BE(padded.length, 2);
    header.writeUInt32BE(0x2112a442, 4);
    Buffer.from(id).copy(header, 8);
    return Buffer.concat([header, padded]);
  });

afterAll(() => {
  console.log(`hostile input: ${cases} datagrams read like the agent reads them`);
});

describe('the STUN/TURN decoders under hostile input', () => {
  it('read random bytes without any exception but StunDecodeError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => onlyDecodeErrors(Buffer.from(bytes))), { numRuns: RUNS });
  });

  it('read random STUN-shaped messages (valid header, random attributes) the same way', () => {
    fc.assert(fc.property(stunShaped, onlyDecodeErrors), { numRuns: RUNS });
  });

  it('read coturn\'s real datagrams mutated (bytes flipped, cut short, lengths rewritten) the same way', () => {
    fc.assert(fc.property(mutated, onlyDecodeErrors), { numRuns: RUNS * 5 });
  });

  it('give back every attribute of any message they encoded', () => {
    const attribute = fc.record({ type: fc.integer({ min: 0x8000, max: 0xffff }).filter((t) => t !== StunAttr.Fingerprint), value: fc.uint8Array({ maxLength: 64 }) });
    const message = fc.record({
      method: fc.integer({ min: 0, max: 0xfff }),
      cls: fc.constantFrom<StunClass>('request', 'indication', 'success', 'error'),
      transactionId: fc.uint8Array({ minLength: 12, maxLength: 12 }),
      attributes: fc.array(attribute, { maxLength: 8 }),
    });
    fc.assert(fc.property(message, (m) => {
      cases++;
      const attributes = m.attributes.map((a) => ({ type: a.type, value: Buffer.from(a.value) }));
      const decoded = decodeStun(encodeStun({ ...m, transactionId: Buffer.from(m.transactionId), attributes }));
      expect({ method: decoded.method, cls: decoded.cls }).toEqual({ method: m.method, cls: m.cls });
      expect(decoded.attributes.map((a) => [a.type, Buffer.from(a.value).toString('hex')])).toEqual(attributes.map((a) => [a.type, a.value.toString('hex')]));
    }), { numRuns: RUNS });
  });
});
