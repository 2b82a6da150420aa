import { describe, expect, it } from 'vitest';
import { StunDecodeError, StunEncodeError } from '../../../../node-agent/nat/errors.js';
import { longTermKey, shortTermKey } from '../../../../node-agent/nat/stun-integrity.js';
import {
  bindingRequest, bindingSuccess, decodeStun, decodeType, encodeStun, encodeType, errorCodeAttr, getErrorCode, getMappedAddress, getText,
  hasValidFingerprint, hasValidIntegrity, isStun, parseBindingSuccess, StunAttr, StunMethod, textAttr,
} from '../../../../node-agent/nat/stun.js';
import {
  LONG_TERM_PASSWORD_PREPPED, LONG_TERM_USERNAME, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE, SAMPLE_LONG_TERM_REQUEST, SAMPLE_REQUEST, SHORT_TERM_PASSWORD,
} from './fixtures/rfc5769.js';

describe('RFC 5769 test vectors', () => {
  it('2.1 sample request: header, attributes, short-term integrity and fingerprint', () => {
    expect(isStun(SAMPLE_REQUEST)).toBe(true);
    const msg = decodeStun(SAMPLE_REQUEST);
    expect(msg).toMatchObject({ method: StunMethod.Binding, cls: 'request' });
    expect(msg.transactionId.toString('hex')).toBe('b7e7a701bc34d686fa87dfae');
    expect(getText(msg, StunAttr.Software)).toBe('STUN test client');
    expect(getText(msg, StunAttr.Username)).toBe('evtj:h6vY');
    // PRIORITY and ICE-CONTROLLED are unknown here: kept as raw attributes, skipped by readers.
    expect(msg.attributes.map((a) => a.type)).toEqual([0x8022, 0x0024, 0x8029, 0x0006, 0x0008]);
    expect(hasValidIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true);
    expect(hasValidIntegrity(msg, shortTermKey('wrong'))).toBe(false);
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
    const msg = decodeStun(SAMPLE_IPV4_RESPONSE);
    expect(msg).toMatchObject({ method: StunMethod.Binding, cls: 'success' });
    expect(getText(msg, StunAttr.Software)).toBe('test vector');
    expect(parseBindingSuccess(msg).mapped).toEqual({ address: '192.0.2.1', port: 32853 });
    expect(hasValidIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true);
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    const msg = decodeStun(SAMPLE_IPV6_RESPONSE);
    expect(getMappedAddress(msg)).toEqual({ address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
    expect(hasValidIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(true);
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('2.4 long-term credentials: key MD5(username:realm:password), and our encoder reproduces the bytes', () => {
    const msg = decodeStun(SAMPLE_LONG_TERM_REQUEST);
    expect(getText(msg, StunAttr.Username)).toBe(LONG_TERM_USERNAME);
    expect(getText(msg, StunAttr.Realm)).toBe('example.org');
    expect(getText(msg, StunAttr.Nonce)).toBe('f//499k954d6OL34oL9FSTvy64sA');
    const key = longTermKey(LONG_TERM_USERNAME, 'example.org', LONG_TERM_PASSWORD_PREPPED);
    expect(hasValidIntegrity(msg, key)).toBe(true);
    expect(hasValidFingerprint(msg)).toBe(false); // the vector carries none
    const rebuilt = encodeStun({
      method: StunMethod.Binding,
      cls: 'request',
      transactionId: msg.transactionId,
      attributes: [textAttr(StunAttr.Username, LONG_TERM_USERNAME), textAttr(StunAttr.Nonce, 'f//499k954d6OL34oL9FSTvy64sA'), textAttr(StunAttr.Realm, 'example.org')],
    }, { integrityKey: key });
    expect(rebuilt.toString('hex')).toBe(SAMPLE_LONG_TERM_REQUEST.toString('hex'));
  });

  it('detects a single flipped bit through FINGERPRINT and MESSAGE-INTEGRITY', () => {
    const corrupted = Buffer.from(SAMPLE_IPV4_RESPONSE);
    corrupted[30]! ^= 0x01; // inside XOR-MAPPED-ADDRESS
    const msg = decodeStun(corrupted);
    expect(hasValidFingerprint(msg)).toBe(false);
    expect(hasValidIntegrity(msg, shortTermKey(SHORT_TERM_PASSWORD))).toBe(false);
  });
});

describe('STUN header', () => {
  it('interleaves method and class bits (RFC 8489 section 5)', () => {
    expect(encodeType(0x001, 'request')).toBe(0x0001);
    expect(encodeType(0x001, 'success')).toBe(0x0101);
    expect(encodeType(0x001, 'error')).toBe(0x0111);
    expect(encodeType(0x003, 'error')).toBe(0x0113);
    expect(encodeType(0x007, 'indication')).toBe(0x0017);
    for (const cls of ['request', 'indication', 'success', 'error'] as const) {
      for (const method of [0x001, 0x009, 0x0ff, 0xfff]) expect(decodeType(encodeType(method, cls))).toEqual({ method, cls });
    }
    expect(() => encodeType(0x1000, 'request')).toThrow(StunEncodeError);
  });

  it('isStun tells STUN from ChannelData, WireGuard and truncated datagrams', () => {
    const request = encodeStun(bindingRequest(), { fingerprint: true });
    expect(isStun(request)).toBe(true);
    expect(isStun(request.subarray(0, 19))).toBe(false);
    expect(isStun(Buffer.concat([request, Buffer.alloc(4)]))).toBe(false); // length field disagrees
    expect(isStun(Buffer.from('40000004deadbeef', 'hex'))).toBe(false); // ChannelData
    const wgInitiation = Buffer.alloc(148);
    wgInitiation[0] = 1;
    expect(isStun(wgInitiation)).toBe(false);
    const badCookie = Buffer.from(request);
    badCookie[4] = 0;
    expect(isStun(badCookie)).toBe(false);
  });

  it('rejects malformed attributes with StunDecodeError', () => {
    const overrun = Buffer.from(encodeStun({ ...bindingRequest(), attributes: [textAttr(StunAttr.Software, 'abcd')] }));
    overrun.writeUInt16BE(0x0010, 22); // SOFTWARE claims 16 bytes in an 8-byte body
    expect(() => decodeStun(overrun)).toThrow(StunDecodeError);
    expect(() => decodeStun(Buffer.from('hello world, not stun at all'))).toThrow(StunDecodeError);
  });

  it('ignores attributes after MESSAGE-INTEGRITY except FINGERPRINT (RFC 8489 section 14.5)', () => {
    const key = shortTermKey('pw');
    const signed = encodeStun({ ...bindingRequest(), attributes: [textAttr(StunAttr.Username, 'u')] }, { integrityKey: key });
    const trailer = Buffer.from('80220004' + Buffer.from('evil').toString('hex'), 'hex');
    const tampered = Buffer.concat([signed, trailer]);
    tampered.writeUInt16BE(tampered.length - 20, 2);
    const msg = decodeStun(tampered);
    expect(getText(msg, StunAttr.Software)).toBeUndefined();
    expect(hasValidIntegrity(msg, key)).toBe(true);
  });
});

describe('STUN attributes', () => {
  it('ERROR-CODE round-trips class and number (RFC 8489 section 14.8)', () => {
    const msg = decodeStun(encodeStun({ ...bindingRequest(), cls: 'error', attributes: [errorCodeAttr(438, 'Stale Nonce')] }));
    expect(getErrorCode(msg)).toEqual({ code: 438, reason: 'Stale Nonce' });
    expect(() => errorCodeAttr(200, 'OK')).toThrow(StunEncodeError);
  });

  it('falls back to MAPPED-ADDRESS from RFC 3489 servers', () => {
    const value = Buffer.from('0001d431c0000201', 'hex'); // family IPv4, port 0xd431, 192.0.2.1, not XORed
    const msg = decodeStun(encodeStun({ ...bindingRequest(), cls: 'success', attributes: [{ type: StunAttr.MappedAddress, value }] }));
    expect(getMappedAddress(msg)).toEqual({ address: '192.0.2.1', port: 0xd431 });
  });

  it('a Binding success answers with the source as XOR-MAPPED-ADDRESS, IPv4 and IPv6', () => {
    for (const source of [{ address: '198.51.100.7', port: 41000 }, { address: '2001:db8::42', port: 1 }]) {
      const request = bindingRequest();
      const response = decodeStun(encodeStun(bindingSuccess(request, source, 'x'), { fingerprint: true }));
      expect(response.transactionId.equals(request.transactionId)).toBe(true);
      expect(parseBindingSuccess(response).mapped).toEqual(source);
      expect(hasValidFingerprint(response)).toBe(true);
    }
  });
});
