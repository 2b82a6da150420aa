// The etcd key layout under the prefix (default /warren), shared by warren-configgen and
// warren-agent. Pure.
//   <prefix>/pool             the pool parameters, written once by the first configgen
//   <prefix>/nodes/<node>     the node's allocation (JSON): subnet, gateway, host address
//   <prefix>/subnets/<index>  the node owning subnet number <index> (zero-padded, so that
//                             key order is index order and a range read finds gaps)
//   <prefix>/hosts/<address>  the node owning that host-overlay address
//   <prefix>/agents/<node>    the node's record (public key, endpoints), written by its
//                             warren-agent under a lease (node-agent/signal)
//   <prefix>/gateway/active   the SD-EWAN gateway election's key (node-agent/gateway)
// and beside the prefix, where a node's read of <prefix>/ does not reach:
//   <prefix>-credentials/<node>/turn   the node's expiring TURN credential, written by
//                             the TURN credential issuer (lib/turn-credential.ts)
// With etcd authentication on, a node's credential writes only agents/<itself> and, for a
// gateway candidate, gateway/active, and reads only its own credentials; the rest is the
// admin's (configgen/admin/) and the issuer's.
import { ConfigError } from '../errors.js';

export interface KeyLayout {
  prefix: string;
  pool: string;
  nodes: string;
  subnets: string;
  hosts: string;
  agents: string;
  gateway: string;
  /** Every node's credentials (the issuer's range). */
  credentials: string;
  node(name: string): string;
  /** One node's credentials (that node's read). */
  credentialsOf(name: string): string;
  turnCredential(name: string): string;
  agent(name: string): string;
  subnet(index: number, width: number): string;
  host(address: string): string;
}

/** Why `prefixText` cannot be the etcd prefix, or undefined when it can (a trailing "/" is dropped). */
export function etcdPrefixProblem(prefixText: string): string | undefined {
  const prefix = prefixText.replace(/\/+$/, '');
  return !prefix.startsWith('/') || /\s/.test(prefix) ? 'must start with "/" and hold no spaces, e.g. /warren' : undefined;
}

export function keyLayout(prefixText: string): KeyLayout {
  const problem = etcdPrefixProblem(prefixText);
  if (problem) throw new ConfigError(`etcd prefix ${JSON.stringify(prefixText)} ${problem}`);
  const prefix = prefixText.replace(/\/+$/, '');
  return {
    prefix,
    pool: `${prefix}/pool`,
    nodes: `${prefix}/nodes/`,
    subnets: `${prefix}/subnets/`,
    hosts: `${prefix}/hosts/`,
    agents: `${prefix}/agents/`,
    gateway: `${prefix}/gateway/active`,
    credentials: `${prefix}-credentials/`,
    credentialsOf: (name) => `${prefix}-credentials/${name}/`,
    turnCredential: (name) => `${prefix}-credentials/${name}/turn`,
    node: (name) => `${prefix}/nodes/${name}`,
    agent: (name) => `${prefix}/agents/${name}`,
    subnet: (index, width) => `${prefix}/subnets/${String(index).padStart(width, '0')}`,
    host: (address) => `${prefix}/hosts/${address}`,
  };
}

/** Digits of the highest subnet index: the pool's fixed key width. */
export function indexWidth(subnets: number): number {
  return String(subnets - 1).length;
}

/** The exclusive end of a prefix range, as etcd wants it ("a/" -> "a0"). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
