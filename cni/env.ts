// Reads the CNI_* environment the runtime sets (spec section "Parameters") and
// rejects what a verb cannot work without, before anything on the node is touched.
import { CniCode, CniError } from './errors.js';
import { interfaceNameProblem } from '../lib/names.js';

export const VERBS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type Verb = (typeof VERBS)[number];

export interface CniEnv {
  command: Verb;
  containerId: string;
  netns: string;
  ifname: string;
  args: Record<string, string>;
  path: string[];
}

const REQUIRED: Record<Verb, (keyof typeof ENV_NAMES)[]> = {
  ADD: ['containerId', 'netns', 'ifname', 'path'],
  DEL: ['containerId', 'ifname', 'path'],
  CHECK: ['containerId', 'netns', 'ifname', 'path'],
  GC: ['path'],
  STATUS: ['path'],
  VERSION: [],
};

const ENV_NAMES = {
  containerId: 'CNI_CONTAINERID',
  netns: 'CNI_NETNS',
  ifname: 'CNI_IFNAME',
  path: 'CNI_PATH',
} as const;

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function parseCniArgs(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const pair of raw.split(';')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS entry ${JSON.stringify(pair)} is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function parseCniEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(CniCode.InvalidEnvironment, 'CNI_COMMAND is not set', `expected one of ${VERBS.join(', ')}`);
  if (!(VERBS as readonly string[]).includes(command)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND ${JSON.stringify(command)} is unknown`, `expected one of ${VERBS.join(', ')}`);
  }
  const verb = command as Verb;
  for (const key of REQUIRED[verb]) {
    const name = ENV_NAMES[key];
    if (!env[name]) throw new CniError(CniCode.InvalidEnvironment, `${name} is required for ${verb}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId && !CONTAINER_ID.test(containerId)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} is invalid`,
      'it must start with a letter or digit, followed by letters, digits, "_", "." or "-"');
  }
  const ifname = env.CNI_IFNAME ?? '';
  const ifProblem = ifname ? interfaceNameProblem(ifname) : undefined;
  if (ifProblem) throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)} ${ifProblem}`);
  return {
    command: verb,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: parseCniArgs(env.CNI_ARGS),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
}
