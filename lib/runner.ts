// The one narrow door through which Warren runs programs (ip, ovs-vsctl, nft, wg,
// IPAM plugins). Injected everywhere so that logic can be tested with a fake and so
// that every exit status is checked in one place.
import { execa } from 'execa';
import { CommandError } from './errors.js';

export interface RunOptions {
  /** Written to the program's standard input. */
  input?: string;
  /** Replaces the environment entirely when `replaceEnv` is set, else extends it. */
  env?: Record<string, string | undefined>;
  replaceEnv?: boolean;
  /** Return a non-zero exit instead of throwing CommandError. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export type Runner = (file: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

// Runtimes exec plugins with a minimal PATH; the system tools live in sbin.
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function withSystemPath(path: string | undefined): string {
  return path ? `${path}:${SYSTEM_PATH}` : SYSTEM_PATH;
}

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].join(' ');
}

export const execRunner: Runner = async (file, args, options = {}) => {
  const env = options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env };
  env.PATH = withSystemPath(env.PATH);
  const result = await execa(file, args, {
    input: options.input ?? '',
    env,
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    timeout: options.timeoutMs,
  });
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : -1;
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  if (result.failed && typeof result.exitCode !== 'number') {
    throw new CommandError(describeCommand(file, args), undefined, stderr || String(result.message), { cause: result.cause });
  }
  if (exitCode !== 0 && !options.allowFailure) {
    throw new CommandError(describeCommand(file, args), exitCode, stderr || stdout);
  }
  return { stdout, stderr, exitCode };
};
