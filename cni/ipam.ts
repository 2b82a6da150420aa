// Delegation to the IPAM plugin (host-local) the way libcni would call it: same
// config on stdin, CNI_COMMAND set, errors passed through with the IPAM's own code.
import { accessSync, constants, mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Runner } from '../lib/runner.js';
import type { WarrenConfig } from './config.js';
import type { CniEnv } from './env.js';
import { CniCode, CniError } from './errors.js';
import { normalizeResult, type CniResult } from './result.js';
import { bestCommonVersion, compareVersions } from './versions.js';

export interface IpamCall {
  runner: Runner;
  env: CniEnv;
  config: WarrenConfig;
  /** Where the supported-versions answer of each IPAM binary is remembered. */
  cacheDir?: string;
  /** The same, in memory: a resident process reads no file for it. */
  versions?: Map<string, string[]>;
}

export function findPlugin(type: string, path: readonly string[]): string | undefined {
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function requirePlugin(call: IpamCall): string {
  const found = findPlugin(call.config.ipam.type, call.env.path);
  if (!found) {
    throw new CniError(CniCode.InvalidConfig, `IPAM plugin ${JSON.stringify(call.config.ipam.type)} not found`,
      `searched CNI_PATH: ${call.env.path.join(':') || '(empty)'}`);
  }
  return found;
}

async function invoke(call: IpamCall, plugin: string, verb: string, version: string, extra: Record<string, unknown> = {},
  env: Partial<Record<string, string>> = {}): Promise<string> {
  const conf: Record<string, unknown> = { ...call.config.raw, cniVersion: version, ...extra };
  if (conf.prevResult === undefined) delete conf.prevResult;
  const { stdout, exitCode } = await call.runner(plugin, [], {
    input: JSON.stringify(conf),
    env: {
      CNI_COMMAND: verb,
      CNI_CONTAINERID: call.env.containerId,
      CNI_NETNS: call.env.netns,
      CNI_IFNAME: call.env.ifname,
      CNI_PATH: call.env.path.join(':'),
      ...env,
    },
    allowFailure: true,
  });
  if (exitCode !== 0) throw ipamError(verb, stdout);
  return stdout;
}

// The spec's codes mean the same from any plugin and pass through. An IPAM plugin's own
// (100 up, such as libcni's 999 "internal") would read as one of Warren's: they become
// IpamFailed, the IPAM's code kept in the details.
const SPEC_CODES: ReadonlySet<number> = new Set(Object.values(CniCode).filter((c) => c < 100));

function ipamError(verb: string, stdout: string): CniError {
  try {
    const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (typeof e.code === 'number') {
      const msg = `IPAM ${verb}: ${e.msg ?? 'failed'}`;
      if (SPEC_CODES.has(e.code)) return new CniError(e.code, msg, e.details ?? '');
      return new CniError(CniCode.IpamFailed, msg, `IPAM code ${e.code}${e.details ? `: ${e.details}` : ''}`);
    }
  } catch {
    // not JSON: report it raw
  }
  return new CniError(CniCode.IpamFailed, `IPAM ${verb} failed`, stdout.trim());
}

/**
 * The version to speak to the IPAM plugin: the config's own when the plugin knows it,
 * else the highest both know (Debian 12's host-local stops at 1.0.0, whose IPAM result
 * is the same as 1.1.0's). The plugin's answer is cached per binary (path, size, mtime).
 */
export async function ipamVersion(call: IpamCall, plugin: string): Promise<string> {
  const wanted = call.config.cniVersion;
  if (compareVersions(wanted, '1.0.0') <= 0) return wanted;
  const st = statSync(plugin);
  const key = `${plugin}:${st.size}:${st.mtimeMs}`;
  const remembered = call.versions?.get(key);
  if (remembered) return chooseVersion(plugin, wanted, remembered);
  const cacheFile = call.cacheDir ? join(call.cacheDir, 'ipam-versions.json') : undefined;
  let cache: Record<string, string[]> = {};
  if (cacheFile) {
    try {
      cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, string[]>;
    } catch {
      cache = {};
    }
  }
  let supported = cache[key];
  if (!supported) {
    const out = await invoke(call, plugin, 'VERSION', wanted);
    supported = (JSON.parse(out) as { supportedVersions?: string[] }).supportedVersions ?? [];
    if (cacheFile) {
      try {
        mkdirSync(call.cacheDir!, { recursive: true, mode: 0o700 });
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, JSON.stringify({ ...cache, [key]: supported }));
        renameSync(tmp, cacheFile);
      } catch {
        // a cache we cannot write costs one VERSION call next time, nothing more
      }
    }
  }
  call.versions?.set(key, supported);
  return chooseVersion(plugin, wanted, supported);
}

function chooseVersion(plugin: string, wanted: string, supported: string[]): string {
  const best = bestCommonVersion(wanted, supported);
  if (!best) {
    throw new CniError(CniCode.IncompatibleVersion, `IPAM plugin ${plugin} supports none of Warren's versions up to ${wanted}`,
      `it supports: ${supported.join(', ')}`);
  }
  return best;
}

export async function ipamAdd(call: IpamCall): Promise<CniResult> {
  const plugin = requirePlugin(call);
  const out = await invoke(call, plugin, 'ADD', await ipamVersion(call, plugin));
  return normalizeResult(JSON.parse(out));
}

export async function ipamDel(call: IpamCall, overrides: Partial<Record<string, string>> = {}): Promise<void> {
  const plugin = requirePlugin(call);
  await invoke(call, plugin, 'DEL', await ipamVersion(call, plugin), {}, overrides);
}

export async function ipamCheck(call: IpamCall, prevResult: unknown): Promise<void> {
  const plugin = requirePlugin(call);
  const version = await ipamVersion(call, plugin);
  await invoke(call, plugin, 'CHECK', version, { prevResult });
}
