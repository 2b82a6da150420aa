import { describe, expect, it } from 'vitest';
import { StunDecodeError, StunEncodeError } from '../../../../node-agent/nat/errors.js';
import { longTermKey } from '../../../../node-agent/nat/stun-integrity.js';
import { decodeStun, getAttr, getText, hasValidFingerprint, hasValidIntegrity, newTransactionId, StunAttr } from '../../../../node-agent/nat/stun.js';
import {
  allocateRequest, channelBindRequest, createPermissionRequest, dataIndication, decodeChannelData, encodeChannelData, encodeRequest, getLifetime,
  isChannelData, isChannelNumber, parsePeerData, refreshRequest, sendIndication, TurnAttr, TurnMethod,
} from '../../../../node-agent/nat/turn.js';

const peer = { address: '198.51.100.9', port: 50123 };

describe('TURN requests', () => {
  it('Allocate asks for a UDP relay (REQUESTED-TRANSPORT 17) and LIFETIME only when given', () => {
    const plain = decodeStun(encodeRequest(allocateRequest(newTransactionId())));
    expect(plain).toMatchObject({ method: TurnMethod.Allocate, cls: 'request' });
    expect(getAttr(plain, TurnAttr.RequestedTransport)?.toString('hex')).toBe('11000000');
    expect(getLifetime(plain)).toBeUndefined();
    expect(hasValidFingerprint(plain)).toBe(true);
    expect(getLifetime(decodeStun(encodeRequest(allocateRequest(newTransactionId(), 120))))).toBe(120);
  });

  it('signed requests carry USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed by MD5(u:r:p)', () => {
    const key = longTermKey('u', 'r', 'p');
    const msg = decodeStun(encodeRequest(refreshRequest(newTransactionId(), 0), { username: 'u', realm: 'r', nonce: 'n0nce', key }));
    expect(msg.method).toBe(TurnMethod.Refresh);
    expect(getLifetime(msg)).toBe(0);
    expect([getText(msg, StunAttr.Username), getText(msg, StunAttr.Realm), getText(msg, StunAttr.Nonce)]).toEqual(['u', 'r', 'n0nce']);
    expect(hasValidIntegrity(msg, key)).toBe(true);
    expect(hasValidIntegrity(msg, longTermKey('u', 'r', 'other'))).toBe(false);
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('CreatePermission carries one XOR-PEER-ADDRESS per peer', () => {
    const id = newTransactionId();
    const msg = decodeStun(encodeRequest(createPermissionRequest(id, [peer, { address: '2001:db8::5', port: 0 }])));
    const peers = msg.attributes.filter((a) => a.type === TurnAttr.XorPeerAddress);
    expect(peers).toHaveLength(2);
    expect(parsePeerData({ ...msg, attributes: [peers[0]!, { type: TurnAttr.Data, value: Buffer.alloc(0) }] }).peer).toEqual(peer);
    expect(() => createPermissionRequest(id, [])).toThrow(StunEncodeError);
  });

  it('ChannelBind carries CHANNEL-NUMBER (number then two RFFU bytes) and the peer', () => {
    const msg = decodeStun(encodeRequest(channelBindRequest(newTransactionId(), 0x4001, peer)));
    expect(getAttr(msg, TurnAttr.ChannelNumber)?.toString('hex')).toBe('40010000');
    expect(() => channelBindRequest(newTransactionId(), 0x3fff, peer)).toThrow(StunEncodeError);
    expect(() => channelBindRequest(newTransactionId(), 0x5000, peer)).toThrow(StunEncodeError);
    expect([isChannelNumber(0x4000), isChannelNumber(0x4fff), isChannelNumber(0x5000)]).toEqual([true, true, false]);
  });
});

describe('TURN indications', () => {
  it('Send and Data indications carry XOR-PEER-ADDRESS and DATA, XORed with their own transaction id', () => {
    const data = Buffer.from('hello through the relay');
    const send = decodeStun(encodeRequest(sendIndication(newTransactionId(), peer, data)));
    expect(send).toMatchObject({ method: TurnMethod.Send, cls: 'indication' });
    expect(parsePeerData(send)).toEqual({ peer, data });
    const dataInd = decodeStun(encodeRequest(dataIndication(newTransactionId(), peer, data)));
    expect(dataInd).toMatchObject({ method: TurnMethod.Data, cls: 'indication' });
    expect(parsePeerData(dataInd)).toEqual({ peer, data });
    expect(() => parsePeerData({ ...dataInd, attributes: [] })).toThrow(StunDecodeError);
  });
});

describe('ChannelData framing (RFC 8656 section 12.5)', () => {
  it('encodes a 4-byte header, pads only when asked, and decodes both forms', () => {
    const data = Buffer.from('abcde');
    const bare = encodeChannelData(0x4000, data);
    expect(bare.toString('hex')).toBe('40000005' + data.toString('hex'));
    const padded = encodeChannelData(0x4000, data, true);
    expect(padded).toHaveLength(12);
    for (const frame of [bare, padded]) {
      expect(isChannelData(frame)).toBe(true);
      expect(decodeChannelData(frame)).toEqual({ channel: 0x4000, data });
    }
  });

  it('rejects frames whose length does not fit the datagram, and non-channel first bytes', () => {
    expect(isChannelData(Buffer.from('4000000aabcd', 'hex'))).toBe(false);
    expect(isChannelData(Buffer.from('50000000', 'hex'))).toBe(false);
    expect(() => decodeChannelData(Buffer.from('0001000000', 'hex'))).toThrow(StunDecodeError);
    expect(() => decodeChannelData(Buffer.concat([encodeChannelData(0x4000, Buffer.alloc(1)), Buffer.alloc(4)]))).toThrow(StunDecodeError);
    expect(() => encodeChannelData(0x4000, Buffer.alloc(0x10000))).toThrow(StunEncodeError);
  });
});
