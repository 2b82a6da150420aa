// STUN message integrity: FINGERPRINT (RFC 8489 section 14.7) and MESSAGE-INTEGRITY
// (section 14.5) with long-term credentials (section 9.2.2). Pure functions over bytes.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const FINGERPRINT_XOR = 0x5354554e;

// CRC-32 as in ISO 3309 / zlib (reflected polynomial 0xEDB88320); zlib.crc32 needs Node 20.15+.
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** FINGERPRINT value over `prefix`: the message up to the attribute, length field already covering it. */
export function fingerprint(prefix: Uint8Array): number {
  return (crc32(prefix) ^ FINGERPRINT_XOR) >>> 0;
}

/**
 * Long-term credential key, RFC 8489 section 9.2.2: MD5(username ":" realm ":" password).
 * The password must already be prepared (OpaqueString, RFC 8265); Warren's are ASCII.
 */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** Short-term credential key, RFC 8489 section 9.1.1: the password itself. */
export function shortTermKey(password: string): Buffer {
  return Buffer.from(password, 'utf8');
}

/** HMAC-SHA1 over `prefix`: the message up to MESSAGE-INTEGRITY, length field covering it. */
export function messageIntegrity(prefix: Uint8Array, key: Uint8Array): Buffer {
  return createHmac('sha1', key).update(prefix).digest();
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
