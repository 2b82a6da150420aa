// Address attributes: MAPPED-ADDRESS (RFC 8489 section 14.1) and the XOR form (section
// 14.2) that TURN reuses for XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS (RFC 8656 sections
// 18.3, 18.5). The XOR keeps NATs that rewrite addresses inside payloads from "fixing" them.
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { CidrError, parseAddress } from '../../lib/cidr.js';
import { StunDecodeError, StunEncodeError } from './errors.js';

export interface Endpoint {
  address: string;
  port: number;
}

const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
export const MAGIC_COOKIE = 0x2112a442;

export function formatEndpoint(e: Endpoint): string {
  return isIPv6(e.address) ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** The address and port of "ip:port" / "[ipv6]:port" (canonical address), or undefined when `text` is not a literal address and port (wg would resolve a name; Warren never hands it one). */
export function parseEndpoint(text: string): Endpoint | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  try {
    return { address: parseAddress(m[1]!).toString(), port };
  } catch (err) {
    if (err instanceof CidrError) return undefined;
    throw err;
  }
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.address === b.address;
}

function addressBytes(address: string): Buffer {
  if (!isIPv4(address) && !isIPv6(address)) throw new StunEncodeError(`${JSON.stringify(address)} is not an IP address`);
  return Buffer.from(ipaddr.parse(address).toByteArray());
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new StunEncodeError(`port ${port} out of range`);
}

/** Plain address value: 0, family, port, address (section 14.1). */
export function encodeAddress(e: Endpoint): Buffer {
  checkPort(e.port);
  const addr = addressBytes(e.address);
  const out = Buffer.alloc(4 + addr.length);
  out[1] = addr.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  out.writeUInt16BE(e.port, 2);
  addr.copy(out, 4);
  return out;
}

export function decodeAddress(value: Buffer): Endpoint {
  const family = value[1];
  const length = family === FAMILY_IPV4 ? 4 : family === FAMILY_IPV6 ? 16 : 0;
  if (length === 0 || value.length !== 4 + length) {
    throw new StunDecodeError(`address attribute of ${value.length} bytes with family ${family}`);
  }
  return {
    address: ipaddr.fromByteArray([...value.subarray(4, 4 + length)]).toString(),
    port: value.readUInt16BE(2),
  };
}

// Section 14.2: port XOR the cookie's top 16 bits; IPv4 XOR the cookie; IPv6 XOR the
// cookie followed by the transaction id. Applying it twice gives the input back.
function xorWith(value: Buffer, transactionId: Buffer): Buffer {
  const out = Buffer.from(value);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  out[2]! ^= mask[0]!;
  out[3]! ^= mask[1]!;
  for (let i = 4; i < out.length; i++) out[i]! ^= mask[i - 4]!;
  return out;
}

export function encodeXorAddress(e: Endpoint, transactionId: Buffer): Buffer {
  return xorWith(encodeAddress(e), transactionId);
}

export function decodeXorAddress(value: Buffer, transactionId: Buffer): Endpoint {
  return decodeAddress(xorWith(value, transactionId));
}
