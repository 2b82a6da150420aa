// The record each node publishes about itself under <prefix>/agents/<node>: what a peer
// needs to build a tunnel to it and to try a direct path. Pure: validation of what comes
// out of etcd (any reader may meet a hand-edited or foreign value), and the one
// serialization that goes in. Only public values travel: every node reads every record.
import { CidrError, formatCidr, parseAddress, parseCidr } from '../../lib/cidr.js';
import { nodeNameProblem } from '../../lib/names.js';
import { isWireguardKey } from '../wireguard/keys.js';
import { NodeRecordError, RecordSecretError } from './errors.js';
import { MAX_CANDIDATES } from './knobs.js';

export const CANDIDATE_KINDS = ['local', 'reflexive', 'relay'] as const;
export type CandidateKind = (typeof CANDIDATE_KINDS)[number];

export const NAT_MAPPINGS = ['endpoint-independent', 'endpoint-dependent', 'unknown'] as const;
export type NatMapping = (typeof NAT_MAPPINGS)[number];

/** An address where the node's WireGuard port may be reached. */
export interface Candidate {
  /** local: an interface address; reflexive: the public address STUN saw; relay: a TURN allocation. */
  kind: CandidateKind;
  address: string;
  port: number;
}

/** A hole-punching round this node asks its peers to join: all send at `at`, so both NATs open together. */
export interface PunchRequest {
  /** Grows with each round, so a peer joins each round once. */
  epoch: number;
  at: string;
}

export interface NodeRecord {
  node: string;
  /** WireGuard public key, base64 of 32 bytes. */
  publicKey: string;
  hostAddress: string;
  podSubnet: string;
  listenPort: number;
  candidates: Candidate[];
  nat: { mapping: NatMapping };
  punch?: PunchRequest;
  /** When the content last changed (ISO 8601 UTC); not part of the content itself. */
  updatedAt: string;
}

export type NodeRecordContent = Omit<NodeRecord, 'updatedAt'>;

// Field names that suggest key material or credentials. Checked on every field at every
// depth, so a record spread from an object that also held the private key is refused.
const SECRET_NAME = /private|secret|passw|preshared|psk|token|credential/i;

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

/** The record stored under `key`, canonical; throws NodeRecordError naming the key and the field. */
export function parseNodeRecord(key: string, text: string, node: string): NodeRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new NodeRecordError(`etcd key ${key}`, '(whole record)', `is not JSON: ${JSON.stringify(text.slice(0, 80))}`, { cause: err });
  }
  const record = checkRecord(`etcd key ${key}`, value, { secretIsError: true });
  if (record.node !== node) throw new NodeRecordError(`etcd key ${key}`, 'node', `is ${JSON.stringify(record.node)}, not the key's node ${JSON.stringify(node)}`);
  return record;
}

/** The JSON written to etcd: known fields only, fixed order; a secret-named field anywhere refuses the whole record. */
export function serializeRecord(record: NodeRecord): string {
  const secret = secretField(record, '');
  if (secret !== undefined) throw new RecordSecretError(String((record as { node?: unknown }).node), secret);
  return JSON.stringify(canonical(checkRecord(`the local record of node ${String(record.node)}`, record, { secretIsError: false })));
}

/** Equality that ignores updatedAt: a restarted agent's identical record is no change. */
export function sameContent(a: NodeRecordContent | NodeRecord, b: NodeRecordContent | NodeRecord): boolean {
  return contentKey(a) === contentKey(b);
}

export function contentKey(record: NodeRecordContent | NodeRecord): string {
  const { updatedAt: _ignored, ...content } = canonical({ ...record, updatedAt: '' });
  return JSON.stringify(content);
}

function canonical(r: NodeRecord): NodeRecord {
  return {
    node: r.node,
    publicKey: r.publicKey,
    hostAddress: r.hostAddress,
    podSubnet: r.podSubnet,
    listenPort: r.listenPort,
    candidates: r.candidates.map((c) => ({ kind: c.kind, address: c.address, port: c.port })),
    nat: { mapping: r.nat.mapping },
    ...(r.punch ? { punch: { epoch: r.punch.epoch, at: r.punch.at } } : {}),
    updatedAt: r.updatedAt,
  };
}

function secretField(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = secretField(item, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [name, item] of Object.entries(value)) {
      const here = path ? `${path}.${name}` : name;
      if (SECRET_NAME.test(name)) return here;
      const found = secretField(item, here);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

// Unknown fields are dropped, not refused: an agent one version ahead may publish more,
// and refusing its record would cut the tunnel to it during a rolling upgrade.
function checkRecord(where: string, value: unknown, { secretIsError }: { secretIsError: boolean }): NodeRecord {
  const bad = (field: string, why: string): never => { throw new NodeRecordError(where, field, why); };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) bad('(whole record)', 'is not a JSON object');
  const r = value as Record<string, unknown>;
  if (secretIsError) {
    const secret = secretField(r, '');
    if (secret !== undefined) bad(secret, 'is named like a secret: no Warren agent publishes one, so this record is foreign and ignored');
  }

  const node = str(r, 'node', bad);
  const nodeProblem = nodeNameProblem(node);
  if (nodeProblem) bad('node', `${JSON.stringify(node)} ${nodeProblem}`);
  const publicKey = str(r, 'publicKey', bad);
  if (!isWireguardKey(publicKey)) bad('publicKey', `${JSON.stringify(publicKey)} is not a WireGuard public key (base64 of 32 bytes, 44 characters)`);
  const hostAddress = address(str(r, 'hostAddress', bad), 'hostAddress', bad);
  let podSubnet = '';
  try {
    podSubnet = formatCidr(parseCidr(str(r, 'podSubnet', bad)));
  } catch (err) {
    if (!(err instanceof CidrError)) throw err;
    bad('podSubnet', `${JSON.stringify(r.podSubnet)} is not a subnet: ${err.message}`);
  }
  const listenPort = port(r.listenPort, 'listenPort', bad);

  if (!Array.isArray(r.candidates)) bad('candidates', `is ${JSON.stringify(r.candidates)}, not a list`);
  const list = r.candidates as unknown[];
  if (list.length > MAX_CANDIDATES) bad('candidates', `lists ${list.length} candidates, more than ${MAX_CANDIDATES}`);
  const candidates = list.map((c, i): Candidate => {
    const f = `candidates[${i}]`;
    if (c === null || typeof c !== 'object') bad(f, `is ${JSON.stringify(c)}, not an object`);
    const o = c as Record<string, unknown>;
    const kind = oneOf(o.kind, CANDIDATE_KINDS, `${f}.kind`, bad);
    return { kind, address: address(str(o, 'address', bad, f), `${f}.address`, bad), port: port(o.port, `${f}.port`, bad) };
  });

  if (r.nat === null || typeof r.nat !== 'object') bad('nat', `is ${JSON.stringify(r.nat)}, not an object`);
  const mapping = oneOf((r.nat as Record<string, unknown>).mapping, NAT_MAPPINGS, 'nat.mapping', bad);

  let punch: PunchRequest | undefined;
  if (r.punch !== undefined) {
    if (r.punch === null || typeof r.punch !== 'object') bad('punch', `is ${JSON.stringify(r.punch)}, not an object`);
    const p = r.punch as Record<string, unknown>;
    if (typeof p.epoch !== 'number' || !Number.isSafeInteger(p.epoch) || p.epoch < 0) {
      bad('punch.epoch', `is ${JSON.stringify(p.epoch)}, not a whole number >= 0`);
    }
    punch = { epoch: p.epoch as number, at: time(p.at, 'punch.at', bad) };
  }
  const updatedAt = time(r.updatedAt, 'updatedAt', bad);
  return { node, publicKey, hostAddress, podSubnet, listenPort, candidates, nat: { mapping }, ...(punch ? { punch } : {}), updatedAt };
}

type Bad = (field: string, why: string) => never;

function str(o: Record<string, unknown>, name: string, bad: Bad, parent?: string): string {
  const v = o[name];
  if (typeof v !== 'string') bad(parent ? `${parent}.${name}` : name, v === undefined ? 'is missing' : `is ${JSON.stringify(v)}, not a string`);
  return v as string;
}

function address(text: string, field: string, bad: Bad): string {
  try {
    return parseAddress(text).toString();
  } catch (err) {
    if (!(err instanceof CidrError)) throw err;
    return bad(field, `${JSON.stringify(text)} is not an IP address`);
  }
}

function port(v: unknown, field: string, bad: Bad): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) bad(field, `is ${JSON.stringify(v)}, not a UDP port (1-65535)`);
  return v as number;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string, bad: Bad): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    bad(field, `is ${JSON.stringify(v)}, not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function time(v: unknown, field: string, bad: Bad): string {
  if (typeof v !== 'string' || !ISO_UTC.test(v) || Number.isNaN(Date.parse(v))) {
    bad(field, `is ${JSON.stringify(v)}, not an ISO 8601 UTC time like 2025-01-31T12:00:00.000Z`);
  }
  return v as string;
}
