// Commands for tests: every exit status is checked (the shared runner throws).
import { readFileSync } from 'node:fs';
import { pollUntil } from '../../lib/poll.js';
import { execRunner, type RunOptions } from '../../lib/runner.js';

export async function run(file: string, args: readonly string[], options?: RunOptions): Promise<string> {
  return (await execRunner(file, args, options)).stdout;
}

export async function sh(script: string, options?: RunOptions): Promise<string> {
  return run('bash', ['-euo', 'pipefail', '-c', script], options);
}

/** Polls `probe` until it returns true, for at most `timeoutMs` (no fixed sleeps in tests). */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  if (!(await pollUntil(probe, timeoutMs, everyMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A log file's text, or '' when the process has not written it (yet). */
export function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
