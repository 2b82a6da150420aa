// The node's CNI network configuration list, pure. Top-level cniVersion is 1.0.0 with
// cniVersions ["1.0.0", "1.1.0"]: runtimes on spec 1.1 pick the highest version they
// share from cniVersions, while libcni before 1.2 (podman 4.3, Debian 12) reads only
// cniVersion and refuses the whole list at "1.1.0" because portmap 1.1.1 does not know
// it (checked with the real podman: "plugin portmap does not support config version").
import type { NodeAllocation, Pool } from './pool.js';
import { podRange } from './pool.js';

export const NETWORK_NAME = 'warren';
export const CONFLIST_NAME = '10-warren.conflist';

export interface ConflistInput {
  allocation: NodeAllocation;
  pool: Pool;
  bridge: string;
  mtu: number;
  logFile: string;
  ovsdb?: string;
  ipamDataDir?: string;
}

/** Only fields the warren plugin accepts: it rejects unknown ones. */
export function renderConflist(input: ConflistInput): Record<string, unknown> {
  const range = podRange(input.allocation.podSubnet);
  const ipam: Record<string, unknown> = {
    type: 'host-local',
    ranges: [[{ subnet: range.subnet, rangeStart: range.rangeStart, rangeEnd: range.rangeEnd, gateway: range.gateway }]],
  };
  if (input.ipamDataDir) ipam.dataDir = input.ipamDataDir;
  const warren: Record<string, unknown> = {
    type: 'warren',
    bridge: input.bridge,
    mtu: input.mtu,
    podCIDR: input.pool.params.podCIDR,
    isGateway: true,
    ipMasq: true,
    logFile: input.logFile,
  };
  if (input.ovsdb) warren.ovsdb = input.ovsdb;
  warren.ipam = ipam;
  return {
    cniVersion: '1.0.0',
    cniVersions: ['1.0.0', '1.1.0'],
    name: NETWORK_NAME,
    plugins: [warren, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
  };
}

/** What the node agent reads: the allocation plus the node-local choices around it. */
export function renderNodeFile(input: ConflistInput): Record<string, unknown> {
  const a = input.allocation;
  return {
    node: a.node,
    podSubnet: a.podSubnet,
    gateway: a.gateway,
    hostAddress: a.hostAddress,
    podCIDR: input.pool.params.podCIDR,
    nodeBits: input.pool.params.nodeBits,
    hostCIDR: input.pool.params.hostCIDR,
    bridge: input.bridge,
    mtu: input.mtu,
  };
}

/** Stable text: the same inputs give the same bytes, so a rerun can see nothing changed. */
export function toFileText(doc: unknown): string {
  return JSON.stringify(doc, null, 2) + '\n';
}
