// A scripted TURN server for the client's unit tests: just enough of RFC 8656 to answer
// each request the way coturn does (401 first, signed responses, LIFETIME echoes).
import { encodeXorAddress, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { longTermKey } from '../../../../node-agent/nat/stun-integrity.js';
import { decodeStun, encodeStun, isStun, errorCodeAttr, getText, hasValidIntegrity, StunAttr, textAttr, type StunAttribute, type StunMessage } from '../../../../node-agent/nat/stun.js';
import { getLifetime, TurnAttr, TurnMethod } from '../../../../node-agent/nat/turn.js';
import type { Reply } from './fake-net.js';

export const SERVER = { address: '192.0.2.10', port: 3478 };
export const RELAYED = { address: '192.0.2.10', port: 55000 };
export const MAPPED = { address: '203.0.113.5', port: 40001 };

export class FakeTurnServer {
  readonly requests: StunMessage[] = [];
  nonce = 'nonce-1';
  /** The next signed request gets 438 Stale Nonce and a new nonce. */
  staleNext = false;
  /** Success responses are signed with a wrong key. */
  forgeIntegrity = false;
  /** Answers to Refresh: 437 once the allocation is gone. */
  allocated = false;
  private readonly key = longTermKey('u', 'r', 'p');

  readonly respond = (data: Buffer, to: Endpoint): Reply[] => {
    if (!isStun(data)) return []; // ChannelData: the client's data path, nothing to answer
    const req = decodeStun(data);
    if (req.cls !== 'request') return [];
    this.requests.push(req);
    const reply = (cls: 'success' | 'error', attributes: StunAttribute[], signed: boolean): Reply[] => [{
      data: encodeStun({ method: req.method, cls, transactionId: req.transactionId, attributes }, signed ? { integrityKey: this.forgeIntegrity ? longTermKey('u', 'r', 'x') : this.key, fingerprint: true } : {}),
      from: to,
    }];
    if (!hasValidIntegrity(req, this.key) || getText(req, StunAttr.Nonce) !== this.nonce && !this.staleNext) {
      return reply('error', [errorCodeAttr(401, 'Unauthorized'), textAttr(StunAttr.Realm, 'r'), textAttr(StunAttr.Nonce, this.nonce)], false);
    }
    if (this.staleNext) {
      this.staleNext = false;
      this.nonce = 'nonce-2';
      return reply('error', [errorCodeAttr(438, 'Stale Nonce'), textAttr(StunAttr.Realm, 'r'), textAttr(StunAttr.Nonce, this.nonce)], false);
    }
    const lifetime = (sec: number): StunAttribute => ({ type: TurnAttr.Lifetime, value: Buffer.from([sec >>> 24, (sec >>> 16) & 255, (sec >>> 8) & 255, sec & 255]) });
    switch (req.method) {
      case TurnMethod.Allocate:
        this.allocated = true;
        return reply('success', [
          { type: TurnAttr.XorRelayedAddress, value: encodeXorAddress(RELAYED, req.transactionId) },
          { type: StunAttr.XorMappedAddress, value: encodeXorAddress(MAPPED, req.transactionId) },
          lifetime(getLifetime(req) ?? 600),
        ], true);
      case TurnMethod.Refresh: {
        if (!this.allocated) return reply('error', [errorCodeAttr(437, 'Allocation Mismatch')], false);
        const granted = Math.min(getLifetime(req) ?? 600, 3600);
        if (granted === 0) this.allocated = false;
        return reply('success', [lifetime(granted)], true);
      }
      default:
        return reply('success', [], true);
    }
  };

  methods(): number[] {
    return this.requests.map((r) => r.method);
  }
}
