// The active gateway's NAT, which makes the whole cluster one SD-EWAN device behind its OIP
// (SDEWAN.md §2.6, §7): the overlay is OIP-to-OIP, the hub's SA carries only traffic whose
// source is our OIP, and other sites know this cluster by that one address. One table of
// its own, replaced as a whole, never edited rule by rule:
//   postrouting: whatever leaves through the egress device toward the overlay's ranges
//                with another source (pods of every node, which reach the gateway over
//                WireGuard with their own addresses) leaves as the OIP.
//   prerouting:  connections arriving from the egress device at any of our OIPs (one per
//                hub whose tunnel is up: a site on the second hub knows us by that
//                hub's OIP) on an exported port go to their target, source kept: a target on another node answers
//                through the gateway because every node routes the overlay's ranges to it,
//                and conntrack turns the answer back into the OIP.
//
// Priorities: the kernel gives a connection the binding of the first NAT chain that makes
// one, in priority order; among chains of equal priority the one registered last runs
// first. The CNI plugin's masquerade (inet warren) and kube-proxy's iptables nat chains sit
// at srcnat/dstnat and may be created after this table (the node's first pod, kube-proxy
// starting later): at srcnat the pods' traffic would then leave masqueraded to whatever address
// the egress device holds. 10 below each runs first, whatever the order of creation.
//
// No forward chain: nftables runs every base chain on a hook and a drop anywhere is final,
// so an accept here could never open a host whose forward policy (another table's) drops;
// only that table's owner can. A plain-accept chain would do nothing at all.
//
// The in-sync test reads `nft -j list table` back. nft rewrites what it is given (single-
// element sets become plain matches, /32 prefixes plain addresses, overlapping or adjacent
// ranges merged), so the overlay's ranges are compared as the addresses they cover.
import { isDeepStrictEqual } from 'node:util';
import ipaddr from 'ipaddr.js';
import { WarrenError } from '../../lib/errors.js';
import { addressToBigInt, formatCidr, parseCidr } from '../../lib/cidr.js';

/** The table the gateway's NAT owns (family ip: OIPs and the overlay are IPv4 only). */
export const GATEWAY_NAT_TABLE = 'warren_gateway';
export const KUBE_API_PORT = 6443;
/** srcnat - 10 and dstnat - 10, as `nft -j` prints them: see above. */
export const SNAT_PRIORITY = 90;
export const DNAT_PRIORITY = -110;

export interface NatExport {
  /** Port on the OIP that other sites connect to. */
  port: number;
  protocol: 'tcp' | 'udp';
  /**
   * Where it goes: an endpoint address (a node's, a pod's). Not a Service ClusterIP, as
   * SD-EWAN's hub CNF uses from inside its pod: in the node's namespace this DNAT is the
   * connection's one destination binding, so kube-proxy's (iptables, nftables) never runs.
   */
  target: string;
  targetPort: number;
}

export interface GatewayNatInput {
  /** The OIP of the hub that carries the overlay now; undefined while no hub is up (no table). */
  oip: string | undefined;
  /** Every OIP whose tunnel is up, where exports answer; absent: the one above. */
  exportOips?: readonly string[];
  /** Where traffic into IPsec leaves: libipsec's TUN (ipsec0), or the way to the hub with kernel ESP. */
  egressDevice: string;
  overlayRanges: readonly string[];
  exports: readonly NatExport[];
}

/** An input the NAT cannot be built from; `field` and `value` name it, nothing was touched. */
export class GatewayNatInputError extends WarrenError {
  constructor(readonly field: string, readonly value: unknown, why: string) {
    super('GATEWAY_NAT_INVALID', `gateway NAT: ${field} ${JSON.stringify(value) ?? String(value)} ${why}`);
  }
}

/** The Kubernetes API exported at OIP:6443, as SD-EWAN's controller expects it in Mode 2 (SDEWAN.md §7). */
export function kubeApiExport(target: string, targetPort = KUBE_API_PORT): NatExport {
  return { port: KUBE_API_PORT, protocol: 'tcp', target, targetPort };
}

interface Checked {
  oip: string | undefined;
  /** Sorted, without duplicates, `oip` included. */
  exportOips: string[];
  dev: string;
  ranges: string[];
  exports: NatExport[];
}

// Linux's own limits (15 bytes, no '/', ':' or spaces), narrowed to what is safe inside nft's quotes.
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const CIDR_TEXT = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;

/** A host address nft and the kernel will NAT to: dotted quad only (ipaddr.js also takes "10.1" and hex). */
function address(field: string, v: unknown): string {
  if (typeof v !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(v)) throw new GatewayNatInputError(field, v, 'is not an IPv4 address');
  const range = ipaddr.IPv4.parse(v).range();
  // Loopback: the kernel drops packets routed from outside to 127/8 (route_localnet is off).
  if (['unspecified', 'broadcast', 'multicast', 'loopback'].includes(range)) throw new GatewayNatInputError(field, v, `is a ${range} address`);
  return v;
}

function port(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new GatewayNatInputError(field, v, 'is not a port from 1 to 65535');
  return v;
}

function check(input: GatewayNatInput): Checked {
  const oip = input.oip === undefined ? undefined : address('oip', input.oip);
  if (input.exportOips !== undefined && !Array.isArray(input.exportOips)) throw new GatewayNatInputError('exportOips', input.exportOips, 'must be a list');
  const exportOips = [...new Set([...(oip ? [oip] : []), ...(input.exportOips ?? []).map((a, i) => address(`exportOips[${i}]`, a))])]
    .sort((a, b) => Number(addressToBigInt(a) - addressToBigInt(b)));
  if (typeof input.egressDevice !== 'string' || !IFNAME.test(input.egressDevice)) throw new GatewayNatInputError('egressDevice', input.egressDevice, 'is not a network interface name');
  if (!Array.isArray(input.overlayRanges) || input.overlayRanges.length === 0) throw new GatewayNatInputError('overlayRanges', input.overlayRanges, 'must list at least one IPv4 CIDR');
  const cidrs = input.overlayRanges.map((r, i) => {
    const field = `overlayRanges[${i}]`;
    if (typeof r !== 'string' || !CIDR_TEXT.test(r) || !ipaddr.IPv4.isValidFourPartDecimal(r.split('/')[0]!)) throw new GatewayNatInputError(field, r, 'is not an IPv4 CIDR such as 10.10.0.0/16');
    try {
      return parseCidr(r);
    } catch (err) {
      throw new GatewayNatInputError(field, r, `is not a network: ${(err as Error).message}`);
    }
  });
  if (!Array.isArray(input.exports)) throw new GatewayNatInputError('exports', input.exports, 'must be a list');
  const seen = new Map<string, number>();
  const exports = input.exports.map((e, i) => {
    const f = `exports[${i}]`;
    if (typeof e !== 'object' || e === null) throw new GatewayNatInputError(f, e, 'must be {port, protocol, target, targetPort}');
    if (e.protocol !== 'tcp' && e.protocol !== 'udp') throw new GatewayNatInputError(`${f}.protocol`, e.protocol, 'must be tcp or udp');
    const x = { port: port(`${f}.port`, e.port), protocol: e.protocol, target: address(`${f}.target`, e.target), targetPort: port(`${f}.targetPort`, e.targetPort) };
    // tcp and udp on one port are two exports (DNS is both); the same one twice is a mistake nft would take silently, first rule winning.
    const key = `${x.protocol}/${x.port}`;
    const first = seen.get(key);
    if (first !== undefined) throw new GatewayNatInputError(`${f}.port`, e.port, `(${x.protocol}) is already exported by exports[${first}]`);
    seen.set(key, i);
    return x;
  });
  // Sorted, duplicates and ranges inside another dropped: the same input in any order is the same script.
  const ordered = [...cidrs].sort((a, b) => Number(addressToBigInt(a.network) - addressToBigInt(b.network)) || a.prefix - b.prefix);
  const ranges = ordered.filter((c, i) => !ordered.slice(0, i).some((o) => o.prefix <= c.prefix && ipaddr.IPv4.parse(c.network).match(ipaddr.IPv4.parse(o.network), o.prefix))).map(formatCidr);
  return { oip, exportOips, dev: input.egressDevice, ranges, exports };
}

const snatComment = (oip: string): string => `warren-gateway: pods to the overlay leave as ${oip}`;
const dnatComment = (e: NatExport): string => `warren-gateway: ${e.protocol} ${e.port} goes to ${e.target}:${e.targetPort}`;

/**
 * Pure: the script that creates or replaces the table in one transaction (the add-then-
 * delete pair makes it succeed whether the table exists or not), or undefined when no hub
 * is up: the table must then be gone, so that nothing leaves as an OIP no hub accepts.
 */
export function gatewayNatScript(input: GatewayNatInput): string | undefined {
  const c = check(input);
  if (c.oip === undefined) return undefined;
  const ranges = c.ranges.length === 1 ? c.ranges[0]! : `{ ${c.ranges.join(', ')} }`;
  const oips = c.exportOips.length === 1 ? c.exportOips[0]! : `{ ${c.exportOips.join(', ')} }`;
  return [
    `add table ip ${GATEWAY_NAT_TABLE}`,
    `delete table ip ${GATEWAY_NAT_TABLE}`,
    `table ip ${GATEWAY_NAT_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat - 10; policy accept;',
    // The gateway's own traffic already has the OIP (routes.ts sets it as the source): a binding could only remap its ports.
    `    oifname "${c.dev}" ip daddr ${ranges} ip saddr != ${c.oip} counter snat to ${c.oip} comment "${snatComment(c.oip)}"`,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat - 10; policy accept;',
    ...c.exports.map((e) => `    iifname "${c.dev}" ip daddr ${oips} ${e.protocol} dport ${e.port} counter dnat to ${e.target}:${e.targetPort} comment "${dnatComment(e)}"`),
    '  }',
    '}',
  ].join('\n') + '\n';
}

/** Pure: removes the table whether it exists or not, in one transaction. */
export function gatewayNatRemovalScript(): string {
  return `add table ip ${GATEWAY_NAT_TABLE}\ndelete table ip ${GATEWAY_NAT_TABLE}\n`;
}

const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const meta = (key: string) => ({ meta: { key } });
const match = (op: string, left: unknown, right: unknown) => ({ match: { op, left, right } });

interface Rule {
  chain: string;
  comment?: string;
  expr?: unknown[];
}

/** Pure: each chain's rules as `nft -j` (1.0.6) prints them, counters left out. */
export function expectedGatewayNatRules(input: GatewayNatInput): Required<Rule>[] {
  return expectedRules(check(input));
}

function expectedRules(c: Checked): Required<Rule>[] {
  if (c.oip === undefined) return [];
  const oip = c.oip;
  const set = c.ranges.map((r) => {
    const [addr, len] = r.split('/') as [string, string];
    return len === '32' ? addr : { prefix: { addr, len: Number(len) } };
  });
  return [
    {
      chain: 'postrouting',
      comment: snatComment(oip),
      expr: [match('==', meta('oifname'), c.dev), match('==', payload('ip', 'daddr'), set.length === 1 ? set[0] : { set }),
        match('!=', payload('ip', 'saddr'), oip), { snat: { addr: oip } }],
    },
    ...c.exports.map((e) => ({
      chain: 'prerouting',
      comment: dnatComment(e),
      expr: [match('==', meta('iifname'), c.dev), match('==', payload('ip', 'daddr'), c.exportOips.length === 1 ? oip : { set: c.exportOips }), match('==', payload(e.protocol, 'dport'), e.port),
        { dnat: { addr: e.target, port: e.targetPort } }],
    })),
  ];
}

/** The addresses an nft right-hand side covers, as merged "first-last" intervals; undefined for anything else. */
function coveredAddresses(right: unknown): string | undefined {
  const items = typeof right === 'object' && right !== null && 'set' in right ? (right as { set: unknown }).set : [right];
  if (!Array.isArray(items)) return undefined;
  const spans: [bigint, bigint][] = [];
  for (const item of items) {
    if (typeof item === 'string' && ipaddr.IPv4.isValidFourPartDecimal(item)) {
      const a = addressToBigInt(item);
      spans.push([a, a]);
    } else if (typeof item === 'object' && item !== null && 'prefix' in item) {
      const { addr, len } = (item as { prefix: { addr: unknown; len: unknown } }).prefix;
      if (typeof addr !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(addr) || typeof len !== 'number') return undefined;
      const a = addressToBigInt(addr);
      spans.push([a, a + (1n << BigInt(32 - len)) - 1n]);
    } else if (typeof item === 'object' && item !== null && 'range' in item) {
      const [lo, hi] = (item as { range: unknown[] }).range;
      if (typeof lo !== 'string' || typeof hi !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(lo) || !ipaddr.IPv4.isValidFourPartDecimal(hi)) return undefined;
      spans.push([addressToBigInt(lo), addressToBigInt(hi)]);
    } else {
      return undefined;
    }
  }
  spans.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1] + 1n) last[1] = s[1] > last[1] ? s[1] : last[1];
    else merged.push([s[0], s[1]]);
  }
  return merged.map(([a, b]) => `${a}-${b}`).join(',');
}

/** A rule's expressions without counters, with every `ip daddr` match reduced to the addresses it covers. */
function comparable(expr: readonly unknown[]): unknown[] {
  return expr.filter((e) => !(typeof e === 'object' && e !== null && 'counter' in e)).map((e) => {
    const m = (e as { match?: { op: string; left: unknown; right: unknown } }).match;
    if (!m || !isDeepStrictEqual(m.left, payload('ip', 'daddr'))) return e;
    return match(m.op, m.left, coveredAddresses(m.right) ?? m.right);
  });
}

/**
 * Pure: whether `nft -j list table ip warren_gateway` (undefined: no table) shows exactly
 * what `input` plans: the two NAT chains at their priorities and the rules in order,
 * equal expression by expression. Counters and handles are ignored; anything else
 * (another OIP, a rule or set added behind the agent's back, another nft's wording)
 * means the table is rewritten, which is always safe.
 */
export function gatewayNatInSync(input: GatewayNatInput, listed: unknown): boolean {
  const c = check(input);
  if (c.oip === undefined) return listed === undefined;
  const want = expectedRules(c);
  if (listed === undefined) return false;
  const items = (listed as { nftables?: Record<string, unknown>[] }).nftables ?? [];
  if (items.some((o) => !('metainfo' in o || 'table' in o || 'chain' in o || 'rule' in o))) return false;
  const chains = items.filter((o) => 'chain' in o).map((o) => o.chain as { name: string; type?: string; hook?: string; prio?: number; policy?: string });
  const hooks = [['postrouting', SNAT_PRIORITY], ['prerouting', DNAT_PRIORITY]] as const;
  if (chains.length !== hooks.length) return false;
  for (const [name, prio] of hooks) {
    const ch = chains.find((x) => x.name === name);
    if (!ch || ch.type !== 'nat' || ch.hook !== name || ch.prio !== prio || ch.policy !== 'accept') return false;
  }
  const rules = items.filter((o) => 'rule' in o).map((o) => o.rule as Rule);
  if (rules.length !== want.length) return false;
  // Per chain in listed order: the order of DNAT rules is the script's.
  return hooks.every(([name]) => {
    const have = rules.filter((r) => r.chain === name);
    const expect = want.filter((r) => r.chain === name);
    return have.length === expect.length && have.every((r, i) => r.comment === expect[i]!.comment && isDeepStrictEqual(comparable(r.expr ?? []), comparable(expect[i]!.expr)));
  });
}
