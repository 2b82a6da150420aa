// A long-running process inside a namespace whose output a test reads while it runs.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Netns } from './netns.js';

export interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** nsenter, not `ip netns exec`: the process keeps the caller's /sys (see TESTBED.md). */
export function spawnIn(ns: Netns, file: string, args: readonly string[]): Spawned {
  const child = spawn('nsenter', [`--net=${ns.path}`, '--', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}
