// Pure planning: from the config, the attachment and the IPAM result, compute the
// commands that make the node look the way it should. Executors only run them.
import { splitInterfaceAddress, type Family } from '../lib/cidr.js';
import type { VsctlCommand } from '../lib/ovs.js';
import type { WarrenConfig } from './config.js';
import { CniCode, CniError } from './errors.js';
import { fnv1a64 } from '../lib/fnv.js';
import { podMac } from './naming.js';
import type { CniResult, CniRoute } from './result.js';

export type Datapath = 'system' | 'netdev';

export interface Attachment {
  containerId: string;
  ifname: string;
  netns: string;
  hostVeth: string;
  podNamespace?: string;
  podName?: string;
}

/** external_ids keys that tie an OVS interface to its attachment (GC finds ports by them). */
export const EXTERNAL_ID = {
  network: 'warren-network',
  containerId: 'cni-container-id',
  ifname: 'cni-ifname',
  netns: 'cni-netns',
  podNamespace: 'k8s-pod-namespace',
  podName: 'k8s-pod-name',
} as const;

export function externalIds(network: string, a: Attachment): Record<string, string> {
  const ids: Record<string, string> = {
    [EXTERNAL_ID.network]: network,
    [EXTERNAL_ID.containerId]: a.containerId,
    [EXTERNAL_ID.ifname]: a.ifname,
    [EXTERNAL_ID.netns]: a.netns,
  };
  if (a.podNamespace) ids[EXTERNAL_ID.podNamespace] = a.podNamespace;
  if (a.podName) ids[EXTERNAL_ID.podName] = a.podName;
  return ids;
}

function ovsQuote(value: string): string {
  return JSON.stringify(value);
}

/**
 * The host veth's alias: the network it belongs to. GC finds by it a veth whose ADD died
 * before its OVS port existed (the port's external_ids are then nowhere). A name outside
 * the spec's characters, or too long for the kernel's 255-byte alias, is hashed.
 */
export function vethAlias(network: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/.test(network) ? `warren-network=${network}` : `warren-network#${fnv1a64(network).toString(16)}`;
}

/**
 * Host end first, pod end created straight inside the pod's netns under its final name;
 * the alias in the same `ip -batch` run (`ip link add` takes none), before the link is up.
 */
export function vethCreateCommands(a: Attachment, mtu: number, network: string): string[] {
  return [
    `link add ${a.hostVeth} mtu ${mtu} type veth peer name ${a.ifname} mtu ${mtu} netns ${a.netns}`,
    `link set ${a.hostVeth} alias ${vethAlias(network)}`,
    `link set ${a.hostVeth} up`,
  ];
}

/**
 * One OVSDB transaction: the bridge when it does not exist yet, and the pod's port.
 * An existing bridge keeps the datapath it was made with (an operator's choice wins).
 */
export function ovsAttachCommands(cfg: WarrenConfig, a: Attachment, bridgeExists: boolean, datapath: Datapath, mtu: number): VsctlCommand[] {
  const ids = Object.entries(externalIds(cfg.name, a)).map(([k, v]) => `external_ids:${k}=${ovsQuote(v)}`);
  return [
    ...(bridgeExists ? [] : bridgeCommands(cfg.bridge, datapath)),
    ['set', 'Interface', cfg.bridge, `mtu_request=${mtu}`],
    ['--may-exist', 'add-port', cfg.bridge, a.hostVeth],
    ['set', 'Interface', a.hostVeth, ...ids],
  ];
}

export function bridgeCommands(bridge: string, datapath: Datapath): VsctlCommand[] {
  return [
    ['--may-exist', 'add-br', bridge],
    ['set', 'Bridge', bridge, `datapath_type=${datapath}`],
  ];
}


export interface Gateway {
  address: string;
  prefix: number;
  family: Family;
}

/**
 * The gateway of each family: the IPAM result's gateway carrying the pod subnet's own
 * prefix length (never the whole PodCIDR's, which would make every other node's pods
 * look on-link).
 */
export function gateways(ipam: CniResult): Gateway[] {
  const seen = new Map<Family, Gateway>();
  for (const ip of ipam.ips) {
    const { prefix, family } = splitInterfaceAddress(ip.address);
    if (!ip.gateway || seen.has(family)) continue;
    seen.set(family, { address: ip.gateway, prefix, family });
  }
  return [...seen.values()];
}

export function bridgeAddressCommands(bridge: string, gws: readonly Gateway[]): string[] {
  return [...gws.map((g) => `address replace ${g.address}/${g.prefix} dev ${bridge}`), `link set ${bridge} up`];
}

function isDefault(dst: string): boolean {
  return dst === '0.0.0.0/0' || dst === '::/0';
}

/** Routes inside the pod: IPAM's own, plus a default route via the gateway of each family lacking one. */
export function podRoutes(ipam: CniResult, gws: readonly Gateway[], isGateway: boolean): CniRoute[] {
  const routes: CniRoute[] = ipam.routes.map((r) => ({ ...r }));
  if (!isGateway) return routes;
  for (const g of gws) {
    const hasDefault = routes.some((r) => isDefault(r.dst) && splitInterfaceAddress(r.dst).family === g.family);
    if (!hasDefault) routes.push({ dst: g.family === 4 ? '0.0.0.0/0' : '::/0', gw: g.address });
  }
  return routes.map((r) => (r.gw ? r : { ...r, gw: gws.find((g) => g.family === splitInterfaceAddress(r.dst).family)?.address }));
}

/**
 * The pod's interface: MAC, addresses, routes. With a gateway, every destination, pods on
 * the same node included, goes through it: the addresses carry no on-link prefix route,
 * only a host route to the gateway. So the node sees both directions of pod-to-pod
 * traffic, and kube-proxy's NAT works when a pod reaches a Service whose backend sits on
 * the same node (the reply would otherwise go pod to pod through the switch, un-NATed).
 */
export function podConfigCommands(ifname: string, ipam: CniResult, routes: readonly CniRoute[], viaGateway = false): string[] {
  const first = ipam.ips[0];
  if (!first) throw new CniError(CniCode.IpamFailed, 'IPAM returned no address');
  const cmds = [`link set ${ifname} address ${podMac(first.address.split('/')[0]!)}`];
  for (const ip of ipam.ips) {
    const { family } = splitInterfaceAddress(ip.address);
    const routed = viaGateway && ip.gateway;
    cmds.push(`address add ${ip.address} dev ${ifname}${family === 6 ? ' nodad' : ''}${routed ? ' noprefixroute' : ''}`);
  }
  cmds.push(`link set ${ifname} up`);
  if (viaGateway) for (const g of gateways(ipam)) cmds.push(`route replace ${g.address}/${g.family === 4 ? 32 : 128} dev ${ifname} scope link`);
  // Batch lines take no family flag: the explicit prefix (0.0.0.0/0, ::/0) names it.
  for (const r of routes) {
    cmds.push(`route replace ${r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${ifname}${r.mtu ? ` mtu ${r.mtu}` : ''}`);
  }
  return cmds;
}

/** nft identifiers take letters, digits and "_"; bridge names may hold more. */
export function nftChainName(bridge: string): string {
  return 'postrouting_' + bridge.replace(/[^A-Za-z0-9_]/g, '_');
}

export const NFT_TABLE = 'warren';

function masqueradeComment(cfg: WarrenConfig): string | undefined {
  return cfg.ipMasq && cfg.podCIDR ? `warren: pods leaving ${cfg.podCIDR.network}/${cfg.podCIDR.prefix}` : undefined;
}

/**
 * One chain per bridge in the node's `inet warren` table, replaced atomically: repeated
 * and concurrent ADDs converge on exactly one rule.
 */
export function masqueradeScript(cfg: WarrenConfig): string {
  const chain = nftChainName(cfg.bridge);
  const lines = [
    `add table inet ${NFT_TABLE}`,
    `add chain inet ${NFT_TABLE} ${chain} { type nat hook postrouting priority srcnat; policy accept; }`,
  ];
  const comment = masqueradeComment(cfg);
  if (comment && cfg.podCIDR) {
    const p = cfg.podCIDR;
    const match = p.family === 4 ? 'ip' : 'ip6';
    const cidr = `${p.network}/${p.prefix}`;
    lines.push(`flush chain inet ${NFT_TABLE} ${chain}`);
    lines.push(`add rule inet ${NFT_TABLE} ${chain} ${match} saddr ${cidr} ${match} daddr != ${cidr} masquerade comment "${comment}"`);
  } else {
    lines.push(`delete chain inet ${NFT_TABLE} ${chain}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Whether the chain as `nft -j list chain` showed it (undefined: no such chain) is what
 * the config wants. Reading costs 3 ms, rewriting 15 ms: ADD rewrites only on a mismatch.
 */
export function masqueradeInSync(cfg: WarrenConfig, listed: unknown): boolean {
  const comment = masqueradeComment(cfg);
  if (listed === undefined) return comment === undefined;
  const items = ((listed as { nftables?: Record<string, unknown>[] }).nftables ?? []);
  const rules = items.filter((o) => 'rule' in o).map((o) => o.rule as { comment?: string; expr?: unknown[] });
  return comment !== undefined && rules.length === 1 && rules[0]!.comment === comment &&
    JSON.stringify(rules[0]!.expr ?? []).includes('"masquerade"');
}
