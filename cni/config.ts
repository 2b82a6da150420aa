// Parses and validates one warren entry of a network configuration list. Pure: the
// same bytes always give the same config or the same CniError, and nothing is touched.
import { CidrError, parseCidr, type Cidr } from '../lib/cidr.js';
import { DEFAULT_RESIDENT_SOCKET, residentSocketProblem } from '../lib/cni-resident.js';
import { interfaceNameProblem } from '../lib/names.js';
import { CniCode, CniError } from './errors.js';
import { requireSupported } from './versions.js';

export interface IpamConfig {
  type: string;
  [key: string]: unknown;
}

export interface WarrenConfig {
  cniVersion: string;
  name: string;
  bridge: string;
  mtu?: number;
  podCIDR?: Cidr;
  isGateway: boolean;
  ipMasq: boolean;
  ipam: IpamConfig;
  logFile?: string;
  ovsdb?: string;
  /** The resident CNI server's socket: tried first, the verb done here when it does not answer. */
  residentSocket: string;
  dns?: Record<string, unknown>;
  prevResult?: unknown;
  validAttachments?: { containerID: string; ifname: string }[];
  /** The config exactly as received, handed to the IPAM plugin. */
  raw: Record<string, unknown>;
}

export const DEFAULT_BRIDGE = 'warren0';

// Keys the spec lets a runtime put in any plugin's config, and Warren's own.
const SPEC_KEYS = new Set(['cniVersion', 'cniVersions', 'name', 'type', 'args', 'runtimeConfig', 'capabilities', 'prevResult', 'dns', 'ipam']);
const WARREN_KEYS = new Set(['bridge', 'mtu', 'podCIDR', 'isGateway', 'ipMasq', 'logFile', 'ovsdb', 'residentSocket']);

function invalid(field: string, value: unknown, why: string): CniError {
  return new CniError(CniCode.InvalidConfig, `${field} ${JSON.stringify(value)} ${why}`);
}

/** unix:PATH, or tcp:/ssl: with HOST:PORT (the client takes no default port; a bad one would throw in net.connect). */
function isOvsdbAddress(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  if (v.startsWith('unix:')) return v.length > 'unix:'.length;
  const port = /^(?:tcp|ssl):(?:\[[0-9A-Fa-f:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(v)?.[1];
  return port !== undefined && Number(port) >= 1 && Number(port) <= 65535;
}

function optionalBoolean(raw: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const v = raw[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalid(field, v, 'must be true or false');
  return v;
}

/** Decodes stdin. Malformed JSON is the spec's decode failure (code 6). */
export function decodeConfig(stdin: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'network configuration is not valid JSON', (err as Error).message);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(CniCode.DecodeFailure, 'network configuration must be a JSON object');
  }
  // Error messages quote values and IPAM gets the config re-encoded: JSON.parse takes any
  // depth, JSON.stringify overflows the stack on ten thousand nested levels.
  try {
    JSON.stringify(raw);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, 'network configuration is nested too deeply', (err as Error).message);
  }
  return raw as Record<string, unknown>;
}

export function parseConfig(raw: Record<string, unknown>): WarrenConfig {
  const cniVersion = requireSupported(raw.cniVersion);
  for (const [key, value] of Object.entries(raw)) {
    if (!SPEC_KEYS.has(key) && !WARREN_KEYS.has(key) && !key.startsWith('cni.dev/')) {
      throw new CniError(CniCode.UnsupportedField, `unsupported field ${JSON.stringify(key)} with value ${JSON.stringify(value)}`,
        `warren understands: ${[...WARREN_KEYS].join(', ')}`);
    }
  }
  if (typeof raw.name !== 'string' || raw.name === '') throw invalid('name', raw.name, 'must be a non-empty string');
  if (raw.type !== 'warren') throw invalid('type', raw.type, 'must be "warren"');

  const bridge = raw.bridge ?? DEFAULT_BRIDGE;
  if (typeof bridge !== 'string') throw invalid('bridge', bridge, 'must be a string');
  const bridgeProblem = interfaceNameProblem(bridge);
  if (bridgeProblem) throw invalid('bridge', bridge, bridgeProblem);

  let mtu: number | undefined;
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 576 || raw.mtu > 65535) {
      throw invalid('mtu', raw.mtu, 'must be a whole number from 576 to 65535');
    }
    mtu = raw.mtu;
  }

  let podCIDR: Cidr | undefined;
  if (raw.podCIDR !== undefined) {
    try {
      podCIDR = parseCidr(raw.podCIDR as string);
    } catch (err) {
      throw invalid('podCIDR', raw.podCIDR, err instanceof CidrError ? `is invalid: ${err.message}` : 'is invalid');
    }
  }
  const isGateway = optionalBoolean(raw, 'isGateway', true);
  const ipMasq = optionalBoolean(raw, 'ipMasq', podCIDR !== undefined);
  if (ipMasq && !podCIDR) throw invalid('ipMasq', true, 'needs podCIDR, the range whose traffic stays unmasqueraded');

  const ipam = raw.ipam as IpamConfig | undefined;
  if (!ipam || typeof ipam !== 'object' || Array.isArray(ipam)) throw invalid('ipam', ipam, 'must be an object');
  if (typeof ipam.type !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(ipam.type)) {
    throw invalid('ipam.type', ipam.type, 'must name an IPAM plugin, e.g. "host-local"');
  }

  if (raw.logFile !== undefined && (typeof raw.logFile !== 'string' || !raw.logFile.startsWith('/'))) {
    throw invalid('logFile', raw.logFile, 'must be an absolute path');
  }
  if (raw.ovsdb !== undefined && !isOvsdbAddress(raw.ovsdb)) {
    throw invalid('ovsdb', raw.ovsdb, 'must be an OVSDB address such as "unix:/run/openvswitch/db.sock" or "tcp:127.0.0.1:6640"');
  }
  const socketProblem = raw.residentSocket === undefined ? undefined : residentSocketProblem(raw.residentSocket);
  if (socketProblem) throw invalid('residentSocket', raw.residentSocket, socketProblem);
  const valid = raw['cni.dev/valid-attachments'];
  const isAttachment = (v: unknown): boolean =>
    v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>).containerID === 'string' && typeof (v as Record<string, unknown>).ifname === 'string';
  if (valid !== undefined && (!Array.isArray(valid) || !valid.every(isAttachment))) {
    // GC removes whatever is not listed: an entry it cannot read must not count as none.
    throw invalid('cni.dev/valid-attachments', valid, 'must be a list of {"containerID": ..., "ifname": ...}');
  }

  return {
    cniVersion,
    name: raw.name,
    bridge,
    mtu,
    podCIDR,
    isGateway,
    ipMasq,
    ipam,
    logFile: raw.logFile as string | undefined,
    ovsdb: raw.ovsdb as string | undefined,
    residentSocket: (raw.residentSocket as string | undefined) ?? DEFAULT_RESIDENT_SOCKET,
    dns: raw.dns as Record<string, unknown> | undefined,
    prevResult: raw.prevResult,
    validAttachments: valid as WarrenConfig['validAttachments'],
    raw,
  };
}
