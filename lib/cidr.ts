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
