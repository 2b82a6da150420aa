// TURN messages, RFC 8656: pure encode/decode on top of stun.ts. Requests other than the
// first Allocate carry long-term credentials (RFC 8489 section 9.2); indications and
// ChannelData carry none (RFC 8656 sections 11 and 12).
import { StunDecodeError, StunEncodeError } from './errors.js';
import { decodeXorAddress, encodeXorAddress, type Endpoint } from './stun-address.js';
import { encodeStun, getAttr, getMappedAddress, StunAttr, textAttr, type StunAttribute, type StunMessage } from './stun.js';
import { TURN_CHANNEL_MAX, TURN_CHANNEL_MIN } from './knobs.js';

/** Methods, RFC 8656 section 17. */
export const TurnMethod = { Allocate: 0x003, Refresh: 0x004, Send: 0x006, Data: 0x007, CreatePermission: 0x008, ChannelBind: 0x009 } as const;

/** Attributes, RFC 8656 section 18. */
export const TurnAttr = {
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  ReservationToken: 0x0022,
} as const;

/** IANA protocol number for UDP, the only relay transport Warren asks for (section 18.11). */
const PROTOCOL_UDP = 17;

export interface Credentials {
  username: string;
  realm: string;
  nonce: string;
  /** longTermKey(username, realm, password). */
  key: Buffer;
}

/**
 * Encodes a request; with credentials it adds USERNAME, REALM, NONCE and MESSAGE-INTEGRITY
 * (RFC 8489 section 9.2.4). FINGERPRINT always: it lets the server tell STUN apart cheaply.
 */
export function encodeRequest(msg: StunMessage, credentials?: Credentials): Buffer {
  if (!credentials) return encodeStun(msg, { fingerprint: true });
  const auth = [
    textAttr(StunAttr.Username, credentials.username),
    textAttr(StunAttr.Realm, credentials.realm),
    textAttr(StunAttr.Nonce, credentials.nonce),
  ];
  return encodeStun({ ...msg, attributes: [...msg.attributes, ...auth] }, { integrityKey: credentials.key, fingerprint: true });
}

function u32(type: number, n: number): StunAttribute {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(n, 0);
  return { type, value };
}

function checkChannel(channel: number): void {
  if (!isChannelNumber(channel)) throw new StunEncodeError(`channel number 0x${channel.toString(16)} outside 0x4000-0x4fff`);
}

export function isChannelNumber(n: number): boolean {
  return Number.isInteger(n) && n >= TURN_CHANNEL_MIN && n <= TURN_CHANNEL_MAX;
}

/** Allocate (section 7.1): a UDP relay; LIFETIME only when asking for other than the default. */
export function allocateRequest(transactionId: Buffer, lifetimeSec?: number): StunMessage {
  const attributes = [u32(TurnAttr.RequestedTransport, PROTOCOL_UDP << 24)];
  if (lifetimeSec !== undefined) attributes.push(u32(TurnAttr.Lifetime, lifetimeSec));
  return { method: TurnMethod.Allocate, cls: 'request', transactionId, attributes };
}

/** Refresh (section 7.2): LIFETIME 0 deletes the allocation. */
export function refreshRequest(transactionId: Buffer, lifetimeSec: number): StunMessage {
  return { method: TurnMethod.Refresh, cls: 'request', transactionId, attributes: [u32(TurnAttr.Lifetime, lifetimeSec)] };
}

/** CreatePermission (section 9.1): one XOR-PEER-ADDRESS per peer; only the IP counts. */
export function createPermissionRequest(transactionId: Buffer, peers: readonly Endpoint[]): StunMessage {
  if (peers.length === 0) throw new StunEncodeError('CreatePermission needs at least one peer');
  const attributes = peers.map((p) => ({ type: TurnAttr.XorPeerAddress, value: encodeXorAddress(p, transactionId) }));
  return { method: TurnMethod.CreatePermission, cls: 'request', transactionId, attributes };
}

/** ChannelBind (section 12.1): CHANNEL-NUMBER is the number then two reserved zero bytes. */
export function channelBindRequest(transactionId: Buffer, channel: number, peer: Endpoint): StunMessage {
  checkChannel(channel);
  return {
    method: TurnMethod.ChannelBind,
    cls: 'request',
    transactionId,
    attributes: [u32(TurnAttr.ChannelNumber, channel << 16), { type: TurnAttr.XorPeerAddress, value: encodeXorAddress(peer, transactionId) }],
  };
}

function peerDataIndication(method: number, transactionId: Buffer, peer: Endpoint, data: Buffer): StunMessage {
  return {
    method,
    cls: 'indication',
    transactionId,
    attributes: [{ type: TurnAttr.XorPeerAddress, value: encodeXorAddress(peer, transactionId) }, { type: TurnAttr.Data, value: data }],
  };
}

/** Send indication (section 11.1): client to server, relayed to `peer`. */
export function sendIndication(transactionId: Buffer, peer: Endpoint, data: Buffer): StunMessage {
  return peerDataIndication(TurnMethod.Send, transactionId, peer, data);
}

/** Data indication (section 11.4): server to client, what `peer` sent to the relay. */
export function dataIndication(transactionId: Buffer, peer: Endpoint, data: Buffer): StunMessage {
  return peerDataIndication(TurnMethod.Data, transactionId, peer, data);
}

export function parsePeerData(msg: StunMessage): { peer: Endpoint; data: Buffer } {
  const peer = getAttr(msg, TurnAttr.XorPeerAddress);
  const data = getAttr(msg, TurnAttr.Data);
  if (!peer || !data) throw new StunDecodeError('indication without XOR-PEER-ADDRESS and DATA');
  return { peer: decodeXorAddress(peer, msg.transactionId), data };
}

export function getLifetime(msg: StunMessage): number | undefined {
  const v = getAttr(msg, TurnAttr.Lifetime);
  if (v && v.length !== 4) throw new StunDecodeError(`LIFETIME of ${v.length} bytes`);
  return v?.readUInt32BE(0);
}

export interface Allocation {
  relayed: Endpoint;
  /** The client's reflexive address as the server sees it (section 7.3). */
  mapped?: Endpoint;
  lifetimeSec: number;
}

export function parseAllocateSuccess(msg: StunMessage): Allocation {
  const relayed = getAttr(msg, TurnAttr.XorRelayedAddress);
  const lifetimeSec = getLifetime(msg);
  if (!relayed || lifetimeSec === undefined) throw new StunDecodeError('Allocate success without XOR-RELAYED-ADDRESS and LIFETIME');
  const mapped = getMappedAddress(msg);
  return { relayed: decodeXorAddress(relayed, msg.transactionId), lifetimeSec, ...(mapped ? { mapped } : {}) };
}

/**
 * ChannelData (section 12.5): channel number, data length, data. Over UDP the padding to
 * 4 bytes is optional; over TCP it is required, so `pad` exists for stream transports.
 */
export function encodeChannelData(channel: number, data: Buffer, pad = false): Buffer {
  checkChannel(channel);
  if (data.length > 0xffff) throw new StunEncodeError(`ChannelData of ${data.length} bytes`);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(channel, 0);
  head.writeUInt16BE(data.length, 2);
  const padding = pad ? Buffer.alloc(((data.length + 3) & ~3) - data.length) : Buffer.alloc(0);
  return Buffer.concat([head, data, padding]);
}

/** First byte 0x40-0x4F (RFC 7983 demultiplexing) and a length that fits the datagram. */
export function isChannelData(buf: Uint8Array): boolean {
  if (buf.length < 4 || buf[0]! < 0x40 || buf[0]! > 0x4f) return false;
  return 4 + ((buf[2]! << 8) | buf[3]!) <= buf.length;
}

/** Accepts padded and unpadded frames: bytes past the length (at most 3 of padding) are ignored. */
export function decodeChannelData(buf: Buffer): { channel: number; data: Buffer } {
  if (!isChannelData(buf)) throw new StunDecodeError(`not a ChannelData frame (${buf.length} bytes: ${buf.subarray(0, 4).toString('hex')})`);
  const length = buf.readUInt16BE(2);
  if (buf.length - 4 - length > 3) throw new StunDecodeError(`ChannelData of length ${length} in a ${buf.length}-byte datagram`);
  return { channel: buf.readUInt16BE(0), data: Buffer.from(buf.subarray(4, 4 + length)) };
}
