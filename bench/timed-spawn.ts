// A process timed from spawn to exit, its stdin written whole, with the environment a
// container runtime gives a plugin: PATH and what is passed, nothing of the caller's.
import { spawn } from 'node:child_process';

export function timedSpawn(file: string, env: Record<string, string>, stdin: string, args: readonly string[] = []): Promise<{ ms: number; code: number; out: string; err: string }> {
  return new Promise((resolveP, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    // A program that exits without reading its stdin (VERSION may) closes the pipe first.
    child.stdin.on('error', () => {});
    child.on('close', (code) => resolveP({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, out, err }));
    child.stdin.end(stdin);
  });
}

/** The same, under GNU time: also the peak resident set (KiB) of the process and the children it waited for. */
export async function peakSpawn(file: string, env: Record<string, string>, stdin: string, args: readonly string[] = []): Promise<{ code: number; out: string; err: string; peakKb: number }> {
  const r = await timedSpawn('/usr/bin/time', env, stdin, ['-f', '%M', file, ...args]);
  return { ...r, peakKb: Number(r.err.trim().split('\n').at(-1)) };
}
