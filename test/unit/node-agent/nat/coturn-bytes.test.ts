// Decoding what a real coturn sent (fixtures/coturn-4.6.1.ts), integrity and fingerprint included.
import { describe, expect, it } from 'vitest';
import { longTermKey } from '../../../../node-agent/nat/stun-integrity.js';
import { decodeStun, getErrorCode, getText, hasValidFingerprint, hasValidIntegrity, isStun, parseBindingSuccess, StunAttr } from '../../../../node-agent/nat/stun.js';
import { decodeChannelData, getLifetime, isChannelData, parseAllocateSuccess, parsePeerData, TurnMethod } from '../../../../node-agent/nat/turn.js';
import * as coturn from './fixtures/coturn-4.6.1.js';

const bytes = (hex: string): Buffer => Buffer.from(hex, 'hex');
const key = longTermKey(coturn.COTURN_KEY_INPUT.username, coturn.COTURN_KEY_INPUT.realm, coturn.COTURN_KEY_INPUT.password);

describe('coturn 4.6.1 captured datagrams', () => {
  it('Binding success: mapped address, RFC 5780 RESPONSE-ORIGIN and OTHER-ADDRESS', () => {
    const msg = decodeStun(bytes(coturn.BINDING_SUCCESS));
    expect(parseBindingSuccess(msg)).toEqual({
      mapped: coturn.CLIENT_MAPPED,
      responseOrigin: { address: '192.0.2.10', port: 3478 },
      otherAddress: { address: '192.0.2.11', port: 3479 },
    });
    expect(getText(msg, StunAttr.Software)).toBe("Coturn-4.6.1 'Gorst'");
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('401 challenge: ERROR-CODE, REALM and NONCE, unsigned', () => {
    const msg = decodeStun(bytes(coturn.ALLOCATE_401));
    expect(msg).toMatchObject({ method: TurnMethod.Allocate, cls: 'error' });
    expect(getErrorCode(msg)).toEqual({ code: 401, reason: 'Unauthorized' });
    expect([getText(msg, StunAttr.Realm), getText(msg, StunAttr.Nonce)]).toEqual(['natlab', '5e53cad024b51993']);
    expect(msg.integrityOffset).toBeUndefined();
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('Allocate success: relayed and mapped addresses, lifetime, signed with MD5(user:realm:password)', () => {
    const msg = decodeStun(bytes(coturn.ALLOCATE_SUCCESS));
    expect(parseAllocateSuccess(msg)).toEqual({ relayed: coturn.CLIENT_RELAYED, mapped: coturn.CLIENT_MAPPED, lifetimeSec: 600 });
    expect(hasValidIntegrity(msg, key)).toBe(true);
    expect(hasValidIntegrity(msg, longTermKey('warren', 'natlab', 'wrong'))).toBe(false);
    expect(hasValidFingerprint(msg)).toBe(true);
  });

  it('CreatePermission, ChannelBind and Refresh successes are signed', () => {
    for (const [hex, method] of [[coturn.CREATE_PERMISSION_SUCCESS, TurnMethod.CreatePermission], [coturn.CHANNEL_BIND_SUCCESS, TurnMethod.ChannelBind], [coturn.REFRESH_SUCCESS, TurnMethod.Refresh]] as const) {
      const msg = decodeStun(bytes(hex));
      expect(msg).toMatchObject({ method, cls: 'success' });
      expect(hasValidIntegrity(msg, key)).toBe(true);
      expect(hasValidFingerprint(msg)).toBe(true);
    }
    expect(getLifetime(decodeStun(bytes(coturn.REFRESH_SUCCESS)))).toBe(0);
  });

  it('Data indication: the peer relay and its payload', () => {
    const msg = decodeStun(bytes(coturn.DATA_INDICATION));
    expect(msg).toMatchObject({ method: TurnMethod.Data, cls: 'indication' });
    expect(parsePeerData(msg)).toEqual({ peer: coturn.PEER_RELAYED, data: Buffer.from('hello via indication') });
  });

  it('ChannelData: unpadded, and never mistaken for STUN', () => {
    const frame = bytes(coturn.CHANNEL_DATA);
    expect(isStun(frame)).toBe(false);
    expect(isChannelData(frame)).toBe(true);
    expect(decodeChannelData(frame)).toEqual({ channel: 0x4000, data: Buffer.from('hello via channel') });
  });
});
