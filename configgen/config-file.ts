// The optional --config file: JSON or YAML (YAML parses JSON too). Besides Warren's own
// field names it takes Evio's net-conf.json as it is, so Evio's users can switch: its
// podCIDR, nodeBits (a string there), dataStore and bridge mean what they meant, and its
// plugin fields, which Warren's own conflist decides, are ignored.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { errorMessage } from '../lib/errors.js';
import { ConfigError } from './errors.js';

/** Setting name -> field names accepted in the file, Warren's first. */
export const FILE_FIELDS = {
  podCIDR: ['podCIDR'],
  nodeBits: ['nodeBits'],
  hostCIDR: ['hostCIDR'],
  nodeName: ['nodeName'],
  etcdEndpoints: ['etcdEndpoints', 'dataStore'],
  etcdCACert: ['etcdCACert'],
  etcdCert: ['etcdCert'],
  etcdKey: ['etcdKey'],
  etcdPrefix: ['etcdPrefix'],
  etcdTimeout: ['etcdTimeout'],
  cniConfDir: ['cniConfDir'],
  stateDir: ['stateDir'],
  bridge: ['bridge'],
  mtu: ['mtu'],
  ovsdb: ['ovsdb'],
  logFile: ['logFile'],
  ipamDataDir: ['ipamDataDir'],
} as const;

export type SettingName = keyof typeof FILE_FIELDS;

// Evio's net-conf.json fields that describe its own plugin; Warren's conflist replaces them.
const EVIO_IGNORED = new Set(['cniVersion', 'name', 'type', 'bridgeType', 'isGateway', 'isDefaultGateway', 'isIPMasq']);

export interface FileValue {
  value: unknown;
  /** How to name it in a message: `podCIDR in /etc/warren/config.yaml`. */
  label: string;
}

export type FileSettings = Partial<Record<SettingName, FileValue>>;

/** Pure: the file's settings from its text; `path` only names things in messages. */
export function parseConfigFile(path: string, content: string): FileSettings {
  let doc: unknown;
  try {
    doc = YAML.parse(content);
  } catch (err) {
    throw new ConfigError(`config file ${path} is neither JSON nor YAML: ${errorMessage(err).split('\n')[0]}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must hold a mapping of fields`);
  const fields = doc as Record<string, unknown>;
  const byField = new Map<string, SettingName>();
  for (const [setting, names] of Object.entries(FILE_FIELDS)) for (const n of names) byField.set(n, setting as SettingName);

  const out: FileSettings = {};
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'auth') {
      // Evio's etcd password flag: Warren authenticates to etcd with client certificates.
      if (value === false || value === undefined || value === null) continue;
      throw new ConfigError(`auth ${JSON.stringify(value)} in ${path}: etcd password authentication is not supported; use etcdCert and etcdKey (mTLS)`);
    }
    if (EVIO_IGNORED.has(field)) continue;
    const setting = byField.get(field);
    if (!setting) {
      throw new ConfigError(`unknown field ${JSON.stringify(field)} in ${path}; known fields: ${[...byField.keys(), 'auth'].join(', ')}`);
    }
    if (out[setting]) throw new ConfigError(`${field} and ${out[setting].label.split(' ')[0]} in ${path} set the same thing: keep one`);
    out[setting] = { value, label: `${field} in ${path}` };
  }
  return out;
}

export function readConfigFile(path: string): FileSettings {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path} cannot be read: ${errorMessage(err)}`, { cause: err });
  }
  return parseConfigFile(path, content);
}
