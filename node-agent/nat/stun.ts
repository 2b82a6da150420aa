// STUN messages, RFC 8489: pure encode/decode. A message is a 20-byte header (section 5)
// followed by type-length-value attributes padded to 4 bytes (section 14). Integrity and
// fingerprint are appended by the encoder and checked against the raw bytes kept on decode.
import { randomBytes } from 'node:crypto';
import { StunDecodeError, StunEncodeError } from './errors.js';
import { decodeAddress, decodeXorAddress, encodeXorAddress, MAGIC_COOKIE, type Endpoint } from './stun-address.js';
import { fingerprint, messageIntegrity, sameBytes } from './stun-integrity.js';

export { MAGIC_COOKIE } from './stun-address.js';
export const HEADER_LENGTH = 20;
const INTEGRITY_LENGTH = 20;
const FINGERPRINT_LENGTH = 4;

export type StunClass = 'request' | 'indication' | 'success' | 'error';

export const StunMethod = { Binding: 0x001 } as const;

/** Attribute types of RFC 8489 section 18.3 and RFC 5780 section 7 (TURN's are in turn.ts). */
export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  XorMappedAddress: 0x0020,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
} as const;

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  cls: StunClass;
  /** 96 bits (section 5). */
  transactionId: Buffer;
  attributes: StunAttribute[];
}

/** A decoded message keeps its bytes so integrity and fingerprint can be checked later. */
export interface DecodedStun extends StunMessage {
  raw: Buffer;
  integrityOffset?: number;
  fingerprintOffset?: number;
}

const CLASS_BITS: Record<StunClass, number> = { request: 0b00, indication: 0b01, success: 0b10, error: 0b11 };
const CLASSES: StunClass[] = ['request', 'indication', 'success', 'error'];

/** Section 5: the 12 method bits are split around the two class bits C0 (bit 4) and C1 (bit 8). */
export function encodeType(method: number, cls: StunClass): number {
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) throw new StunEncodeError(`STUN method ${method} out of range`);
  const c = CLASS_BITS[cls];
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

export function decodeType(type: number): { method: number; cls: StunClass } {
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  return { method, cls: CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]! };
}

export function newTransactionId(): Buffer {
  return randomBytes(12);
}

/**
 * Tells STUN apart from other traffic on a shared socket (section 7.3.1, RFC 7983): the
 * first two bits are zero, the cookie is in place and the length matches the datagram.
 * WireGuard messages start with type 1-4 then three zero bytes, so never carry the cookie.
 */
export function isStun(buf: Uint8Array): boolean {
  if (buf.length < HEADER_LENGTH || (buf[0]! & 0xc0) !== 0) return false;
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  const length = view.readUInt16BE(2);
  return view.readUInt32BE(4) === MAGIC_COOKIE && length % 4 === 0 && HEADER_LENGTH + length === buf.length;
}

const pad4 = (n: number): number => (n + 3) & ~3;

function attributeBytes(attributes: readonly StunAttribute[]): Buffer {
  const parts: Buffer[] = [];
  for (const { type, value } of attributes) {
    if (value.length > 0xffff) throw new StunEncodeError(`attribute 0x${type.toString(16)} of ${value.length} bytes`);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(value.length, 2);
    parts.push(head, value, Buffer.alloc(pad4(value.length) - value.length));
  }
  return Buffer.concat(parts);
}

export interface EncodeOptions {
  /** Appends MESSAGE-INTEGRITY keyed with this (see stun-integrity.ts for the key). */
  integrityKey?: Uint8Array;
  /** Appends FINGERPRINT (section 14.7), always last. */
  fingerprint?: boolean;
}

export function encodeStun(msg: StunMessage, options: EncodeOptions = {}): Buffer {
  if (msg.transactionId.length !== 12) throw new StunEncodeError(`transaction id of ${msg.transactionId.length} bytes, want 12`);
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(encodeType(msg.method, msg.cls), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  msg.transactionId.copy(header, 8);
  let out = Buffer.concat([header, attributeBytes(msg.attributes)]);
  // Sections 14.5 and 14.7: the length field already counts the attribute being computed.
  if (options.integrityKey) {
    out.writeUInt16BE(out.length - HEADER_LENGTH + 4 + INTEGRITY_LENGTH, 2);
    const mac = messageIntegrity(out, options.integrityKey);
    out = Buffer.concat([out, attributeBytes([{ type: StunAttr.MessageIntegrity, value: mac }])]);
  }
  if (options.fingerprint) {
    out.writeUInt16BE(out.length - HEADER_LENGTH + 4 + FINGERPRINT_LENGTH, 2);
    const value = Buffer.alloc(4);
    value.writeUInt32BE(fingerprint(out), 0);
    out = Buffer.concat([out, attributeBytes([{ type: StunAttr.Fingerprint, value }])]);
  }
  out.writeUInt16BE(out.length - HEADER_LENGTH, 2);
  return out;
}

export function decodeStun(buf: Buffer): DecodedStun {
  if (!isStun(buf)) throw new StunDecodeError(`not a STUN message (${buf.length} bytes: ${buf.subarray(0, 8).toString('hex')})`);
  const msg: DecodedStun = { ...decodeType(buf.readUInt16BE(0)), transactionId: Buffer.from(buf.subarray(8, 20)), attributes: [], raw: buf };
  let offset = HEADER_LENGTH;
  while (offset < buf.length) {
    if (offset + 4 > buf.length) throw new StunDecodeError(`truncated attribute header at byte ${offset}`);
    const type = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (offset + 4 + length > buf.length) throw new StunDecodeError(`attribute 0x${type.toString(16)} overruns the message`);
    const value = Buffer.from(buf.subarray(offset + 4, offset + 4 + length));
    if (msg.fingerprintOffset !== undefined) throw new StunDecodeError('attribute after FINGERPRINT');
    if (type === StunAttr.Fingerprint) {
      if (length !== FINGERPRINT_LENGTH) throw new StunDecodeError(`FINGERPRINT of ${length} bytes`);
      msg.fingerprintOffset = offset;
    } else if (msg.integrityOffset === undefined) {
      if (type === StunAttr.MessageIntegrity) {
        if (length !== INTEGRITY_LENGTH) throw new StunDecodeError(`MESSAGE-INTEGRITY of ${length} bytes`);
        msg.integrityOffset = offset;
      }
      msg.attributes.push({ type, value });
    }
    // Section 14.5: attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored.
    offset += 4 + pad4(length);
  }
  return msg;
}

/** Bytes up to `offset` with the length field set as if the message ended `tail` bytes later. */
function prefixFor(raw: Buffer, offset: number, tail: number): Buffer {
  const prefix = Buffer.from(raw.subarray(0, offset));
  prefix.writeUInt16BE(offset - HEADER_LENGTH + tail, 2);
  return prefix;
}

/** Section 14.5: true only if MESSAGE-INTEGRITY is present and matches `key`. */
export function hasValidIntegrity(msg: DecodedStun, key: Uint8Array): boolean {
  if (msg.integrityOffset === undefined) return false;
  const expected = messageIntegrity(prefixFor(msg.raw, msg.integrityOffset, 4 + INTEGRITY_LENGTH), key);
  return sameBytes(expected, msg.raw.subarray(msg.integrityOffset + 4, msg.integrityOffset + 4 + INTEGRITY_LENGTH));
}

/** Section 14.7: true only if FINGERPRINT is present and matches. */
export function hasValidFingerprint(msg: DecodedStun): boolean {
  if (msg.fingerprintOffset === undefined) return false;
  const expected = fingerprint(prefixFor(msg.raw, msg.fingerprintOffset, 4 + FINGERPRINT_LENGTH));
  return expected === msg.raw.readUInt32BE(msg.fingerprintOffset + 4);
}

export function getAttr(msg: StunMessage, type: number): Buffer | undefined {
  return msg.attributes.find((a) => a.type === type)?.value;
}

export function getText(msg: StunMessage, type: number): string | undefined {
  return getAttr(msg, type)?.toString('utf8');
}

export function textAttr(type: number, text: string): StunAttribute {
  return { type, value: Buffer.from(text, 'utf8') };
}

/** ERROR-CODE (section 14.8): 21 zero bits, class (hundreds) in 3 bits, number in 8 bits, reason. */
export function errorCodeAttr(code: number, reason: string): StunAttribute {
  if (!Number.isInteger(code) || code < 300 || code > 699) throw new StunEncodeError(`error code ${code} outside 300-699`);
  const head = Buffer.from([0, 0, Math.floor(code / 100), code % 100]);
  return { type: StunAttr.ErrorCode, value: Buffer.concat([head, Buffer.from(reason, 'utf8')]) };
}

export function getErrorCode(msg: StunMessage): { code: number; reason: string } | undefined {
  const v = getAttr(msg, StunAttr.ErrorCode);
  if (!v) return undefined;
  if (v.length < 4) throw new StunDecodeError(`ERROR-CODE of ${v.length} bytes`);
  return { code: (v[2]! & 0x07) * 100 + v[3]!, reason: v.subarray(4).toString('utf8') };
}

/** The reflexive address: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS from RFC 3489 servers (section 14.1). */
export function getMappedAddress(msg: StunMessage): Endpoint | undefined {
  const xor = getAttr(msg, StunAttr.XorMappedAddress);
  if (xor) return decodeXorAddress(xor, msg.transactionId);
  const plain = getAttr(msg, StunAttr.MappedAddress);
  return plain ? decodeAddress(plain) : undefined;
}

/** A Binding request (section 3): asks the server for the address it sees us from. */
export function bindingRequest(transactionId: Buffer = newTransactionId(), software?: string): StunMessage {
  return { method: StunMethod.Binding, cls: 'request', transactionId, attributes: software ? [textAttr(StunAttr.Software, software)] : [] };
}

/** The answer to a Binding request seen from `source`: what a peer's connectivity check gets back. */
export function bindingSuccess(request: StunMessage, source: Endpoint, software?: string): StunMessage {
  const attributes: StunAttribute[] = [{ type: StunAttr.XorMappedAddress, value: encodeXorAddress(source, request.transactionId) }];
  if (software) attributes.push(textAttr(StunAttr.Software, software));
  return { method: StunMethod.Binding, cls: 'success', transactionId: request.transactionId, attributes };
}

export interface BindingResult {
  mapped: Endpoint;
  /** RFC 5780 section 7.3: where the response was sent from. */
  responseOrigin?: Endpoint;
  /** RFC 5780 section 7.4: the server's other address, for behaviour discovery. */
  otherAddress?: Endpoint;
}

export function parseBindingSuccess(msg: StunMessage): BindingResult {
  if (msg.method !== StunMethod.Binding || msg.cls !== 'success') throw new StunDecodeError(`not a Binding success response (${msg.cls} 0x${msg.method.toString(16)})`);
  const mapped = getMappedAddress(msg);
  if (!mapped) throw new StunDecodeError('Binding success response without a mapped address');
  const origin = getAttr(msg, StunAttr.ResponseOrigin);
  const other = getAttr(msg, StunAttr.OtherAddress);
  return {
    mapped,
    ...(origin ? { responseOrigin: decodeAddress(origin) } : {}),
    ...(other ? { otherAddress: decodeAddress(other) } : {}),
  };
}
