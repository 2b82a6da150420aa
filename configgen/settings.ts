// Every setting once: its flag, its environment variable, its default. Resolution is
// pure: flags win over the environment, which wins over the config file, which wins
// over the default; each value keeps the name it was given under, so that an error
// says "--node-bits" or "nodeBits in net-conf.json", whichever the user wrote.
import { DEFAULT_CNI_LOG_FILE } from '../lib/cni-log.js';
import { interfaceNameProblem, nodeNameProblem } from '../lib/names.js';
import type { EtcdSettings } from '../lib/etcd/store.js';
import { ConfigError } from './errors.js';
import type { FileSettings, SettingName } from './config-file.js';
import { keyLayout, type KeyLayout } from '../lib/etcd/keys.js';
import { carvePool, type Pool, type PoolField } from './pool.js';

export interface SettingSpec {
  flag: string;
  env: string;
  default?: string;
  help: string;
  /** Commander's placeholder. */
  arg: string;
}

export const SETTINGS: Record<SettingName, SettingSpec> = {
  podCIDR: { flag: '--pod-cidr', env: 'WARREN_POD_CIDR', arg: 'cidr', help: 'the cluster\'s pod CIDR, e.g. 10.244.0.0/16 (required to allocate)' },
  nodeBits: { flag: '--node-bits', env: 'WARREN_NODE_BITS', arg: 'n', help: 'node subnet prefix = pod prefix + n, e.g. 8 (required to allocate)' },
  hostCIDR: { flag: '--host-cidr', env: 'WARREN_HOST_CIDR', arg: 'cidr', default: '10.10.0.0/16', help: 'range of host-overlay addresses' },
  nodeName: { flag: '--node-name', env: 'NODE_NAME', arg: 'name', help: 'this node\'s name (default: the hostname)' },
  etcdEndpoints: { flag: '--etcd-endpoints', env: 'WARREN_ETCD_ENDPOINTS', arg: 'list', default: 'http://127.0.0.1:2379', help: 'comma-separated etcd endpoints' },
  etcdCACert: { flag: '--etcd-cacert', env: 'WARREN_ETCD_CACERT', arg: 'file', help: 'CA certificate that signed etcd\'s server certificate' },
  etcdCert: { flag: '--etcd-cert', env: 'WARREN_ETCD_CERT', arg: 'file', help: 'client certificate for etcd (mTLS)' },
  etcdKey: { flag: '--etcd-key', env: 'WARREN_ETCD_KEY', arg: 'file', help: 'client key for etcd (mTLS)' },
  etcdPrefix: { flag: '--etcd-prefix', env: 'WARREN_ETCD_PREFIX', arg: 'key', default: '/warren', help: 'prefix of every key Warren writes' },
  etcdTimeout: { flag: '--etcd-timeout', env: 'WARREN_ETCD_TIMEOUT', arg: 'duration', default: '60s', help: 'how long to retry while etcd is unreachable (e.g. 500ms, 30s, 2m)' },
  cniConfDir: { flag: '--cni-conf-dir', env: 'WARREN_CNI_CONF_DIR', arg: 'dir', default: '/etc/cni/net.d', help: 'where the conflist is written' },
  stateDir: { flag: '--state-dir', env: 'WARREN_STATE_DIR', arg: 'dir', default: '/var/lib/warren', help: 'where node.json (the allocation, for the agent) is written' },
  bridge: { flag: '--bridge', env: 'WARREN_BRIDGE', arg: 'name', default: 'warren0', help: 'pod bridge name' },
  mtu: { flag: '--mtu', env: 'WARREN_MTU', arg: 'bytes', help: 'pod MTU (default: the default route\'s interface MTU minus 80)' },
  ovsdb: { flag: '--ovsdb', env: 'WARREN_OVSDB', arg: 'address', help: 'OVSDB socket for the plugin, e.g. unix:/run/openvswitch/db.sock' },
  logFile: { flag: '--log-file', env: 'WARREN_CNI_LOG_FILE', arg: 'file', default: DEFAULT_CNI_LOG_FILE, help: 'the plugin\'s log file' },
  ipamDataDir: { flag: '--ipam-data-dir', env: 'WARREN_IPAM_DATA_DIR', arg: 'dir', help: 'host-local\'s state directory (default: host-local\'s own)' },
};

export interface Sources {
  flags: Partial<Record<SettingName, string>>;
  env: Record<string, string | undefined>;
  file: FileSettings;
  hostname: string;
}

export interface StoreConfig {
  etcd: EtcdSettings;
  keys: KeyLayout;
}

export interface AllocateConfig extends StoreConfig {
  pool: Pool;
  node: string;
  cniConfDir: string;
  stateDir: string;
  bridge: string;
  /** Undefined: derive from the uplink. */
  mtu: number | undefined;
  ovsdb: string | undefined;
  logFile: string;
  ipamDataDir: string | undefined;
}

interface Picked {
  value: unknown;
  label: string;
}

class Resolver {
  constructor(private readonly s: Sources) {}

  pick(name: SettingName): Picked | undefined {
    const spec = SETTINGS[name];
    const flag = this.s.flags[name];
    if (flag !== undefined) return { value: flag, label: spec.flag };
    const env = this.s.env[spec.env];
    if (env !== undefined && env !== '') return { value: env, label: spec.env };
    const file = this.s.file[name];
    if (file !== undefined && file.value !== null) return file;
    if (spec.default !== undefined) return { value: spec.default, label: spec.flag };
    return undefined;
  }

  label(name: SettingName): string {
    return this.pick(name)?.label ?? SETTINGS[name].flag;
  }

  optionalString(name: SettingName): string | undefined {
    const p = this.pick(name);
    if (p === undefined) return undefined;
    if (typeof p.value !== 'string' || p.value === '') throw new ConfigError(`${p.label} ${JSON.stringify(p.value)} must be a non-empty string`);
    return p.value;
  }

  string(name: SettingName): string {
    const v = this.optionalString(name);
    if (v === undefined) {
      const spec = SETTINGS[name];
      throw new ConfigError(`${spec.flag} is required (or ${spec.env}, or ${name} in the --config file)`);
    }
    return v;
  }

  /** Whole numbers, as a number or as decimal text (Evio wrote nodeBits as "8"). */
  integer(name: SettingName, required: true): number;
  integer(name: SettingName, required: false): number | undefined;
  integer(name: SettingName, required: boolean): number | undefined {
    const p = this.pick(name);
    if (p === undefined) return required ? Number(this.string(name)) : undefined;
    const v = p.value;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
    throw new ConfigError(`${p.label} ${JSON.stringify(v)} is not a whole number`);
  }
}

/** Pure: "500ms", "30s", "2m", or a bare number of seconds, in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

export function resolveStore(sources: Sources): StoreConfig {
  const r = new Resolver(sources);
  const endpoints = r.pick('etcdEndpoints')!;
  const list = typeof endpoints.value === 'string' ? endpoints.value
    : Array.isArray(endpoints.value) && endpoints.value.every((e) => typeof e === 'string') ? (endpoints.value as string[]) : undefined;
  if (list === undefined) throw new ConfigError(`${endpoints.label} ${JSON.stringify(endpoints.value)} must be a comma-separated string or a list of endpoints`);
  const timeout = r.pick('etcdTimeout')!;
  const timeoutMs = typeof timeout.value === 'number' ? timeout.value * 1000 : parseDuration(String(timeout.value));
  if (timeoutMs === undefined || !(timeoutMs > 0)) {
    throw new ConfigError(`${timeout.label} ${JSON.stringify(timeout.value)} is not a positive duration such as 500ms, 30s or 2m`);
  }
  const prefix = r.string('etcdPrefix');
  let keys: KeyLayout;
  try {
    keys = keyLayout(prefix);
  } catch (err) {
    throw new ConfigError(`${r.label('etcdPrefix')}: ${(err as Error).message}`);
  }
  return {
    etcd: {
      endpoints: list,
      caFile: r.optionalString('etcdCACert'),
      certFile: r.optionalString('etcdCert'),
      keyFile: r.optionalString('etcdKey'),
      timeoutMs,
    },
    keys,
  };
}

export function resolveNodeName(sources: Sources): string {
  const r = new Resolver(sources);
  const picked = r.pick('nodeName');
  // Kubernetes names a node after its hostname, lowercased.
  const { value, label } = picked ?? { value: sources.hostname.toLowerCase(), label: 'the hostname' };
  if (typeof value !== 'string') throw new ConfigError(`${label} ${JSON.stringify(value)} must be a string`);
  const problem = nodeNameProblem(value);
  if (problem) throw new ConfigError(`${label} ${JSON.stringify(value)} ${problem}`);
  return value;
}

/** The pool from --pod-cidr, --node-bits and --host-cidr (or their variables or file fields); the first two are required. */
export function resolvePool(sources: Sources): Pool {
  const r = new Resolver(sources);
  const poolLabel = (f: PoolField) => r.label(f);
  return carvePool({ podCIDR: r.string('podCIDR'), nodeBits: r.integer('nodeBits', true), hostCIDR: r.string('hostCIDR') }, poolLabel);
}

/** The pool when --pod-cidr or --node-bits is given in any form, else undefined (the caller reads the stored one). */
export function resolveOptionalPool(sources: Sources): Pool | undefined {
  const r = new Resolver(sources);
  return r.pick('podCIDR') === undefined && r.pick('nodeBits') === undefined ? undefined : resolvePool(sources);
}

export function resolveAllocate(sources: Sources): AllocateConfig {
  const r = new Resolver(sources);
  const store = resolveStore(sources);
  const node = resolveNodeName(sources);
  const pool = resolvePool(sources);

  const bridge = r.string('bridge');
  const bridgeProblem = interfaceNameProblem(bridge);
  if (bridgeProblem) throw new ConfigError(`${r.label('bridge')} ${JSON.stringify(bridge)} ${bridgeProblem}`);

  const mtu = r.integer('mtu', false);
  if (mtu !== undefined && (mtu < 576 || mtu > 65535)) throw new ConfigError(`${r.label('mtu')} ${mtu} must be from 576 to 65535`);

  const ovsdb = r.optionalString('ovsdb');
  if (ovsdb !== undefined && !/^(unix|tcp|ssl):./.test(ovsdb)) {
    throw new ConfigError(`${r.label('ovsdb')} ${JSON.stringify(ovsdb)} must be an OVSDB address such as unix:/run/openvswitch/db.sock`);
  }
  const absolute = (name: SettingName, value: string | undefined) => {
    if (value !== undefined && !value.startsWith('/')) throw new ConfigError(`${r.label(name)} ${JSON.stringify(value)} must be an absolute path`);
    return value;
  };
  return {
    ...store,
    pool,
    node,
    cniConfDir: absolute('cniConfDir', r.string('cniConfDir'))!,
    stateDir: absolute('stateDir', r.string('stateDir'))!,
    bridge,
    mtu,
    ovsdb,
    logFile: absolute('logFile', r.string('logFile'))!,
    ipamDataDir: absolute('ipamDataDir', r.optionalString('ipamDataDir')),
  };
}
