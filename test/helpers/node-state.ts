// What a test compares before and after: everything the plugin may create on a node.
import { readdirSync } from 'node:fs';
import type { Netns } from './netns.js';
import type { OvsInstance } from './ovs.js';
import { run } from './sh.js';

export interface NodeState {
  links: string[];
  ovsInterfaces: string[];
  allocations: string[];
  nftRules: number;
}

export async function nodeState(node: Netns, ovs: OvsInstance, ipamDir: string): Promise<NodeState> {
  // The three probes at once: hostile-input takes a snapshot after each of hundreds of cases.
  const [linkList, interfaceList, nftList] = await Promise.all([
    node.exec('ip', ['-json', 'link', 'show']),
    run('ovs-vsctl', [`--db=${ovs.db}`, '--format=csv', '--no-headings', '--columns=name', 'list', 'Interface']),
    node.exec('nft', ['-j', 'list', 'ruleset']),
  ]);
  const links = (JSON.parse(linkList.stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
  const ovsInterfaces = interfaceList.trim().split('\n').filter(Boolean).sort();
  let allocations: string[] = [];
  try {
    allocations = readdirSync(ipamDir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')).sort();
  } catch {
    allocations = [];
  }
  const ruleset = JSON.parse(nftList.stdout) as { nftables: Record<string, unknown>[] };
  const nftRules = ruleset.nftables.filter((o) => 'rule' in o).length;
  return { links, ovsInterfaces, allocations, nftRules };
}

/** Pod-related leftovers: host veths and their OVS ports, addresses in IPAM. */
export function podResidue(s: NodeState): { veths: string[]; ports: string[]; allocations: string[] } {
  return {
    veths: s.links.filter((l) => l.startsWith('wrn')),
    ports: s.ovsInterfaces.filter((l) => l.startsWith('wrn')),
    allocations: s.allocations,
  };
}
