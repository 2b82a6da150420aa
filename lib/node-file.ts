// node.json, written by warren-configgen into the state directory and read by warren-agent:
// this node's place in the cluster (pod subnet, host-overlay address, the cluster's ranges,
// the pod MTU). The file's name and what a reader requires of it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CidrError, cidrContains, parseAddress, parseCidr } from './cidr.js';
import { WarrenError, errorMessage } from './errors.js';

export const NODE_FILE = 'node.json';

export class NodeFileError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NODE_FILE_INVALID', message, options);
  }
}

export interface NodeFile {
  node: string;
  podSubnet: string;
  hostAddress: string;
  podCIDR: string;
  hostCIDR: string;
  mtu: number;
}


/** Pure: validates the file's content; `path` names it in messages. */
export function parseNodeFile(path: string, text: string): NodeFile {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new NodeFileError(`${path} is not JSON: ${errorMessage(err)}`, { cause: err });
  }
  const field = (name: string, check: (v: unknown) => boolean, what: string): unknown => {
    const v = doc?.[name];
    if (!check(v)) throw new NodeFileError(`${name} ${JSON.stringify(v)} in ${path} ${what}`);
    return v;
  };
  const parses = (parse: (text: string) => unknown) => (v: unknown): boolean => {
    if (typeof v !== 'string') return false;
    try {
      parse(v);
      return true;
    } catch (err) {
      if (err instanceof CidrError) return false;
      throw err;
    }
  };
  const isCidr = parses(parseCidr);
  const isAddress = parses(parseAddress);
  const out: NodeFile = {
    node: field('node', (v) => typeof v === 'string' && v !== '', 'must be the node name') as string,
    podSubnet: field('podSubnet', isCidr, 'must be a CIDR') as string,
    hostAddress: field('hostAddress', isAddress, 'must be an IP address') as string,
    podCIDR: field('podCIDR', isCidr, 'must be a CIDR') as string,
    hostCIDR: field('hostCIDR', isCidr, 'must be a CIDR') as string,
    mtu: field('mtu', (v) => Number.isInteger(v) && (v as number) >= 1280, 'must be a whole number of at least 1280') as number,
  };
  if (!cidrContains(parseCidr(out.hostCIDR), out.hostAddress)) {
    throw new NodeFileError(`hostAddress ${out.hostAddress} in ${path} is outside hostCIDR ${out.hostCIDR}`);
  }
  if (!cidrContains(parseCidr(out.podCIDR), parseCidr(out.podSubnet).network)) {
    throw new NodeFileError(`podSubnet ${out.podSubnet} in ${path} is outside podCIDR ${out.podCIDR}`);
  }
  return out;
}

export function readNodeFile(stateDir: string, expectedNode: string): NodeFile {
  const path = join(stateDir, NODE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new NodeFileError(`${path} cannot be read (${errorMessage(err)}): run warren-configgen for this node first`, { cause: err });
  }
  const file = parseNodeFile(path, text);
  if (file.node !== expectedNode) {
    throw new NodeFileError(`${path} belongs to node ${JSON.stringify(file.node)}, not ${JSON.stringify(expectedNode)} (nodeName)`);
  }
  return file;
}
