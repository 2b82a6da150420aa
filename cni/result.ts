// The CNI result in one internal shape, and its conversion to every version a runtime
// may ask for. 0.3.x/0.4.0 tag each IP with "version"; 1.0.0 dropped that; 1.1.0 added
// interface MTU and route attributes.
import { familyOf, splitInterfaceAddress } from '../lib/cidr.js';
import { CniCode, CniError } from './errors.js';
import { compareVersions } from './versions.js';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: CniDns;
}

const ROUTE_1_1_FIELDS = ['mtu', 'advmss', 'priority', 'table', 'scope'] as const;

function fail(why: string): never {
  throw new CniError(CniCode.DecodeFailure, `result is malformed: ${why}`);
}

/** Reads a result of any supported version (from IPAM, or a prevResult) into the internal shape. */
export function normalizeResult(raw: unknown): CniResult {
  if (!raw || typeof raw !== 'object') fail('not an object');
  const r = raw as Record<string, unknown>;
  const arr = (key: string): Record<string, unknown>[] => {
    const v = r[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) fail(`${key} is not a list`);
    if (!v.every((e) => e !== null && typeof e === 'object')) fail(`${key} holds something that is not an object`);
    return v as Record<string, unknown>[];
  };
  // Addresses and destinations are parsed later (CHECK, the pod's routes): refused here if they cannot be.
  const prefixed = (text: string, what: string): string => {
    try {
      splitInterfaceAddress(text);
    } catch {
      fail(`${what} ${JSON.stringify(text)} is not an address with a prefix length`);
    }
    return text;
  };
  const ips = arr('ips').map((ip): CniIp => {
    if (typeof ip.address !== 'string') fail('an IP has no address');
    prefixed(ip.address, 'IP address');
    return {
      address: ip.address,
      ...(typeof ip.gateway === 'string' ? { gateway: ip.gateway } : {}),
      ...(typeof ip.interface === 'number' ? { interface: ip.interface } : {}),
    };
  });
  const routes = arr('routes').map((rt): CniRoute => {
    if (typeof rt.dst !== 'string') fail('a route has no dst');
    const out: CniRoute = { dst: prefixed(rt.dst, 'route dst') };
    if (typeof rt.gw === 'string') out.gw = rt.gw;
    for (const f of ROUTE_1_1_FIELDS) if (typeof rt[f] === 'number') out[f] = rt[f] as number;
    return out;
  });
  const interfaces = arr('interfaces').map((i): CniInterface => {
    if (typeof i.name !== 'string') fail('an interface has no name');
    return {
      name: i.name,
      ...(typeof i.mac === 'string' ? { mac: i.mac } : {}),
      ...(typeof i.mtu === 'number' ? { mtu: i.mtu } : {}),
      ...(typeof i.sandbox === 'string' ? { sandbox: i.sandbox } : {}),
    };
  });
  const dns = (r.dns && typeof r.dns === 'object' ? r.dns : {}) as CniDns;
  return { interfaces, ips, routes, dns };
}

/** The result as the JSON a runtime speaking `version` expects. */
export function convertResult(result: CniResult, version: string): Record<string, unknown> {
  const v11 = compareVersions(version, '1.1.0') >= 0;
  const v1 = compareVersions(version, '1.0.0') >= 0;
  const out: Record<string, unknown> = { cniVersion: version };
  out.interfaces = result.interfaces.map((i) => {
    const o: Record<string, unknown> = { name: i.name };
    if (i.mac) o.mac = i.mac;
    if (v11 && i.mtu !== undefined) o.mtu = i.mtu;
    if (i.sandbox !== undefined) o.sandbox = i.sandbox;
    return o;
  });
  out.ips = result.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (!v1) o.version = String(familyOf(ip.address.split('/')[0]!));
    o.address = ip.address;
    if (ip.gateway) o.gateway = ip.gateway;
    if (ip.interface !== undefined) o.interface = ip.interface;
    return o;
  });
  out.routes = result.routes.map((rt) => {
    const o: Record<string, unknown> = { dst: rt.dst };
    if (rt.gw) o.gw = rt.gw;
    if (v11) for (const f of ROUTE_1_1_FIELDS) if (rt[f] !== undefined) o[f] = rt[f];
    return o;
  });
  out.dns = { ...result.dns };
  return out;
}
