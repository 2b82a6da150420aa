// warren-spawner (cni/resident/spawner.c), the built binary, through the server's runner
// (spawner.ts): what a program printed, its exit, its input, many at once, a timeout, a
// program that is not there, and the spawner itself dying, each as the server sees it.
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CommandError } from '../../../lib/errors.js';
import type { Runner } from '../../../lib/runner.js';
import { Spawner } from '../../../cni/resident/spawner.js';
import { waitFor } from '../../helpers/sh.js';

const SPAWNER = resolve('dist/bin/warren-spawner');

let spawner: Spawner | undefined;
afterEach(() => spawner?.stop());

function start(onGone: (why: string) => void = () => {}): { s: Spawner; run: Runner; fallbackCalls: string[] } {
  const fallbackCalls: string[] = [];
  const fallback: Runner = async (file) => {
    fallbackCalls.push(file);
    return { stdout: 'from the fallback', stderr: '', exitCode: 0 };
  };
  spawner = Spawner.start(SPAWNER, onGone)!;
  return { s: spawner, run: spawner.runner(fallback), fallbackCalls };
}

describe('warren-spawner', () => {
  it('runs a program on the request\'s PATH with its environment and input, and returns its output and exit', async () => {
    const { run } = start();
    const r = await run('sh', ['-c', 'read line; echo "$line $GREETING"; echo to-stderr >&2; exit 3'], { input: 'hello\n', env: { GREETING: 'world' }, allowFailure: true });
    expect(r).toEqual({ stdout: 'hello world\n', stderr: 'to-stderr\n', exitCode: 3 });
    // Only the request's environment: nothing of the server's leaks in.
    const env = await run('env', [], { env: { ONLY: '1', PATH: '/usr/bin:/bin' }, replaceEnv: true });
    expect(env.stdout.trim().split('\n').sort()).toEqual(['ONLY=1', 'PATH=/usr/bin:/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  it('throws the runner\'s CommandError for a failure unless allowed, naming the command and its stderr', async () => {
    const { run } = start();
    const err = await run('sh', ['-c', 'echo no such bridge >&2; exit 1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toContain('sh -c echo no such bridge >&2; exit 1');
    expect((err as CommandError).message).toContain('no such bridge');
    const missing = await run('warren-no-such-program', ['x']).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CommandError);
    expect((missing as CommandError).message).toContain('warren-no-such-program: No such file or directory');
  });

  it('carries large input and output whole, and answers 200 programs at once each with its own result', async () => {
    const { run } = start();
    const big = 'x'.repeat(3 * 1024 * 1024);
    expect((await run('cat', [], { input: big })).stdout.length).toBe(big.length);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => run('sh', ['-c', `sleep 0.0$((${i} % 5)); echo ${i}`])));
    expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it('kills a program past its timeout, and one killed by a signal is a failure', async () => {
    const { run } = start();
    const t0 = Date.now();
    const timedOut = await run('sleep', ['10'], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((timedOut as CommandError).message).toContain('timed out: killed by SIGKILL');
    const killed = await run('sh', ['-c', 'kill -TERM $$']).catch((e: unknown) => e);
    expect((killed as CommandError).message).toContain('killed by signal 15');
  });

  it('when killed, fails what it had started and hands later calls to the fallback', async () => {
    const gone: string[] = [];
    const { s, run, fallbackCalls } = start((why) => gone.push(why));
    const running = run('sleep', ['5']).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(s.pid!, 'SIGKILL');
    const err = await running;
    expect((err as CommandError).message).toContain('warren-spawner exited (SIGKILL)');
    expect(gone).toEqual(['exited (SIGKILL)']);
    expect(s.alive).toBe(false);
    expect(await run('true', [])).toMatchObject({ stdout: 'from the fallback' });
    expect(fallbackCalls).toEqual(['true']);
  });

  it('kills what it started when the server closes it', async () => {
    const { s, run } = start();
    const pidFile = `/tmp/warren-spawner-test-${process.pid}`;
    void run('sh', ['-c', `echo $$ > ${pidFile}; exec sleep 30`]).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const { readFileSync, rmSync } = await import('node:fs');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    rmSync(pidFile);
    s.stop();
    await new Promise((r) => setTimeout(r, 200));
    // Dead: gone, or a zombie its new parent has not reaped yet.
    const state = (() => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]; } catch { return 'gone'; } })();
    expect(['gone', 'Z']).toContain(state);
  });

  it('serves a server that is pid 1 of its namespace (a container\'s first process), which is where the DaemonSet runs it', async () => {
    const { spawn } = await import('node:child_process');
    const socket = `/tmp/warren-spawner-pid1-${process.pid}.sock`;
    const server = spawn('unshare', ['--pid', '--fork', '--kill-child', resolve('dist/bin/warren'), 'cni-server', '--socket', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitFor('the server to listen', async () => log.includes('"msg":"listening"'), 20_000, 50);
      await new Promise((r) => setTimeout(r, 500));
      expect(JSON.parse(log.split('\n').find((l) => l.includes('"msg":"listening"'))!)).toMatchObject({ pid: 1, spawner: expect.any(Number) });
      expect(log).not.toContain('warren-spawner is gone');
    } finally {
      // unshare ignores SIGTERM while it waits; killed, it takes the namespace's pid 1 along (--kill-child).
      server.kill('SIGKILL');
      await new Promise((r) => server.once('close', r));
    }
  });
});
