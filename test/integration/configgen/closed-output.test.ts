// A reader that goes away early (`warren-configgen --help | head -1`) must not crash the
// binary: no stack trace, the command's own exit status (141, the shell's SIGPIPE
// status, would be fine too).
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { execRunner } from '../../../lib/runner.js';
import { CONFIGGEN, requireBinary } from './run.js';

beforeAll(() => requireBinary());

/** Runs the binary with stdout or stderr a pipe whose reading end is closed before the binary writes. */
function withClosedReader(args: readonly string[], closed: 'stdout' | 'stderr'): Promise<{ exitCode: number | null; other: string }> {
  const child = spawn(CONFIGGEN, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  // The binary needs far longer to start than this takes: its first write meets a closed pipe.
  child[closed].destroy();
  const open = closed === 'stdout' ? child.stderr : child.stdout;
  let other = '';
  open.on('data', (d: Buffer) => (other += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve({ exitCode, other }));
  });
}

describe('warren-configgen whose reader goes away', () => {
  it('exits quietly when stdout is closed before --help is written', async () => {
    const r = await withClosedReader(['--help'], 'stdout');
    expect(r.other).toBe('');
    expect([0, 141]).toContain(r.exitCode);
  });

  it('keeps its exit status when stderr is closed before an error is written', async () => {
    const r = await withClosedReader(['--bogus'], 'stderr');
    expect(r.other).toBe('');
    expect(r.exitCode).toBe(2);
  });

  it('prints the first line of --help to `head -1`, and nothing on stderr', async () => {
    // head exits after one line, while commander is still writing the rest: a race, so several runs.
    for (let i = 0; i < 3; i++) {
      const r = await execRunner('bash', ['--norc', '-c', 'set -o pipefail; "$0" --help | head -1', CONFIGGEN],
        { env: { PATH: process.env.PATH }, replaceEnv: true, allowFailure: true });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('Usage: warren-configgen [options] [command]\n');
      expect([0, 141]).toContain(r.exitCode);
    }
  });
});
