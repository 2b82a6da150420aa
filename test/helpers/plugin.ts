// Runs the built warren-cni binary as a runtime would: inside the node's namespace,
// config on stdin, CNI_* in the environment.
import { resolve } from 'node:path';
import { execRunner } from '../../lib/runner.js';
import type { Netns } from './netns.js';

// The file runtimes execute: the shim, which hands the call to a resident server when one
// answers and execs the standalone plugin beside it (dist/cni/warren-cni) when none does.
export const WARREN_CNI = resolve('dist/cni/warren');
export const CNI_PATH = '/usr/lib/cni';

export interface PluginCall {
  node: Netns;
  command: string;
  config: Record<string, unknown> | string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  env?: Record<string, string | undefined>;
  /** Kill the plugin after this long: the call then throws (a hang is a failure, not a wait). */
  timeoutMs?: number;
}

export interface PluginReply {
  exitCode: number;
  stdout: string;
  json: Record<string, unknown> | undefined;
}

export async function cni(call: PluginCall): Promise<PluginReply> {
  const env: Record<string, string | undefined> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname ?? (call.containerId ? 'eth0' : undefined),
    CNI_PATH: `${CNI_PATH}`,
    CNI_ARGS: call.args,
    PATH: process.env.PATH,
    ...call.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const input = typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
  const r = await execRunner('ip', ['netns', 'exec', call.node.name, WARREN_CNI], { input, env, replaceEnv: true, allowFailure: true, timeoutMs: call.timeoutMs });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { exitCode: r.exitCode, stdout: r.stdout, json };
}
