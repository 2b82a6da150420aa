// Starts a long-lived daemon (wireguard-go) the agent does not wait for. Detached in its
// own session with its output in a file, so it outlives an agent restart: a dying
// agent neither signals it nor breaks its stdout pipe.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { childEnv } from '../../lib/runner.js';

export interface Launched {
  /** Undefined when the program could not be started at all (exited then says so). */
  pid: number | undefined;
  /** Settles when the process exits: its code, the signal that ended it, or why it never ran. */
  exited: Promise<Exit>;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

export type Launcher = (file: string, args: readonly string[], options: { logPath: string }) => Launched;

export const launchDetached: Launcher = (file, args, { logPath }) => {
  mkdirSync(dirname(logPath), { recursive: true, mode: 0o700 });
  const log = openSync(logPath, 'a', 0o600);
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log], env: childEnv({}) });
    const exited = new Promise<Exit>((resolve) => {
      child.once('error', (err) => resolve({ code: null, signal: null, error: err.message }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    // The agent's event loop must not wait for the daemon.
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    closeSync(log);
  }
};

/** The command that runs `file` inside the network namespace at `netnsPath`. */
export function inNetnsCommand(netnsPath: string | undefined, file: string, args: readonly string[]): [string, string[]] {
  return netnsPath ? ['nsenter', [`--net=${netnsPath}`, '--', file, ...args]] : [file, [...args]];
}
