// Kernel parameters, written only when they differ (a write to /proc/sys is not free
// under 50 concurrent ADDs): of the calling process's network namespace, or through a
// runner (the agent's, which may act on a node's namespace from outside it).
import { readFileSync, writeFileSync } from 'node:fs';
import type { Runner } from './runner.js';

export function ensureSysctl(key: string, value: string): void {
  ensureProcSys(`/proc/sys/${key.replaceAll('.', '/')}`, value);
}

/** The same by path: interface names may hold dots, which sysctl keys cannot. */
export function ensureProcSys(path: string, value: string): void {
  if (readFileSync(path, 'utf8').trim() === value) return;
  writeFileSync(path, value);
}

/** Through `runner`: whether the value had to be written ('set') or was already there. */
export async function ensureSysctlWith(runner: Runner, key: string, value: string): Promise<'set' | 'unchanged'> {
  if ((await runner('sysctl', ['-n', key])).stdout.trim() === value) return 'unchanged';
  await runner('sysctl', ['-qw', `${key}=${value}`]);
  return 'set';
}
