// CIDR arithmetic on top of ipaddr.js, shared by the CNI plugin and configgen.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface Cidr {
  /** Network address, canonical text. */
  network: string;
  prefix: number;
  family: Family;
}

export class CidrError extends Error {}

export function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (!ipaddr.isValid(text)) throw new CidrError(`${JSON.stringify(text)} is not an IP address`);
  const a = ipaddr.parse(text);
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

export function familyOf(address: string): Family {
  return parseAddress(address).kind() === 'ipv4' ? 4 : 6;
}

/** Parses "a.b.c.d/n"; with `strict`, host bits must be zero. */
export function parseCidr(text: string, { strict = true } = {}): Cidr {
  if (typeof text !== 'string' || !ipaddr.isValidCIDR(text)) throw new CidrError(`${JSON.stringify(text)} is not a CIDR`);
  const [addr, prefix] = ipaddr.parseCIDR(text);
  const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
  const network = family === 4
    ? ipaddr.IPv4.networkAddressFromCIDR(text).toString()
    : ipaddr.IPv6.networkAddressFromCIDR(text).toString();
  if (strict && network !== addr.toString()) {
    throw new CidrError(`${text} has host bits set (the network is ${network}/${prefix})`);
  }
  return { network, prefix, family };
}

export function formatCidr(c: Cidr): string {
  return `${c.network}/${c.prefix}`;
}

export function cidrContains(outer: Cidr, address: string): boolean {
  const a = parseAddress(address);
  if ((a.kind() === 'ipv4' ? 4 : 6) !== outer.family) return false;
  return a.match(ipaddr.parse(outer.network), outer.prefix);
}

/** The first and last address of `c` as numbers (IPv4 and IPv6 alike), for sorting and sweeping. */
export function cidrRange(c: Cidr): { start: bigint; end: bigint } {
  const bytes = ipaddr.parse(c.network).toByteArray();
  const bits = bytes.length * 8;
  const start = bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
  return { start, end: start + (1n << BigInt(bits - c.prefix)) - 1n };
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && (cidrContains(a, b.network) || cidrContains(b, a.network));
}

/** The interface address "ip/prefix" split into its parts. */
export function splitInterfaceAddress(text: string): { address: string; prefix: number; family: Family } {
  const slash = text.indexOf('/');
  if (slash < 0) throw new CidrError(`${JSON.stringify(text)} has no prefix length`);
  const address = parseAddress(text.slice(0, slash)).toString();
  const prefix = Number(text.slice(slash + 1));
  const family = familyOf(address);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new CidrError(`${JSON.stringify(text)} has an invalid prefix length`);
  }
  return { address, prefix, family };
}

// Address arithmetic for carving pools into subnets: addresses as bigints so that one
// code path serves IPv4 and IPv6.

export function addressBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function addressToBigInt(address: string): bigint {
  return parseAddress(address).toByteArray().reduce((n, byte) => (n << 8n) | BigInt(byte), 0n);
}

export function bigIntToAddress(value: bigint, family: Family): string {
  const bytes: number[] = [];
  for (let i = 0, v = value; i < addressBits(family) / 8; i++, v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** How many addresses the CIDR spans, network and broadcast included. */
export function addressCount(c: Cidr): bigint {
  return 1n << BigInt(addressBits(c.family) - c.prefix);
}

/** The address `offset` places after the network address (negative counts from the end). */
export function addressAt(c: Cidr, offset: bigint | number): string {
  const n = BigInt(offset);
  const size = addressCount(c);
  if (n >= size || -n > size) throw new CidrError(`offset ${n} is outside ${formatCidr(c)}`);
  return bigIntToAddress(addressToBigInt(c.network) + (n >= 0n ? n : size + n), c.family);
}

/** The `index`th subnet of length `prefix` inside `c`, counting from zero. */
export function subnetAt(c: Cidr, prefix: number, index: number): Cidr {
  if (prefix < c.prefix || prefix > addressBits(c.family)) throw new CidrError(`/${prefix} does not fit in ${formatCidr(c)}`);
  const count = 1n << BigInt(prefix - c.prefix);
  if (!Number.isInteger(index) || index < 0 || BigInt(index) >= count) throw new CidrError(`subnet ${index} is outside ${formatCidr(c)}`);
  const step = 1n << BigInt(addressBits(c.family) - prefix);
  return { network: bigIntToAddress(addressToBigInt(c.network) + BigInt(index) * step, c.family), prefix, family: c.family };
}

/** Which subnet of length `prefix` of `c` holds `address`, or undefined when outside. */
export function subnetIndexOf(c: Cidr, prefix: number, address: string): number | undefined {
  if (!cidrContains(c, address)) return undefined;
  const offset = addressToBigInt(address) - addressToBigInt(c.network);
  return Number(offset >> BigInt(addressBits(c.family) - prefix));
}
