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

/** Builds the child's environment: inherited unless replaceEnv, PATH always completed. */
export function childEnv(options: RunOptions): Record<string, string> {
  const env: Record<string, string | undefined> = options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env };
  env.PATH = withSystemPath(env.PATH);
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return env as Record<string, string>;
}

/** The one place exit statuses are judged, whichever way the process was started. */
export function settle(file: string, args: readonly string[], options: RunOptions, r: { exitCode: number | undefined; stdout: string; stderr: string; cause?: unknown }): RunResult {
  if (r.exitCode === undefined) {
    throw new CommandError(describeCommand(file, args), undefined, r.stderr, { cause: r.cause });
  }
  if (r.exitCode !== 0 && !options.allowFailure) {
    throw new CommandError(describeCommand(file, args), r.exitCode, r.stderr || r.stdout);
  }
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
}

/** The runner for daemons and tools, on execa. */
export const execRunner: Runner = async (file, args, options = {}) => {
  const result = await execa(file, args, {
    input: options.input ?? '',
    env: childEnv(options),
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    timeout: options.timeoutMs,
  });
  const exited = typeof result.exitCode === 'number';
  return settle(file, args, options, {
    exitCode: exited ? result.exitCode : undefined,
    stdout: String(result.stdout ?? ''),
    stderr: exited ? String(result.stderr ?? '') : String(result.stderr || result.message),
    cause: result.cause,
  });
};
