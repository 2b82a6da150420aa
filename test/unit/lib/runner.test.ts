// Both runners behave the same: one table, run against each.
import { describe, expect, it } from 'vitest';
import { CommandError } from '../../../lib/errors.js';
import { execRunner, type Runner } from '../../../lib/runner.js';
import { spawnRunner } from '../../../lib/spawn-runner.js';

describe.each([['execa', execRunner], ['child_process', spawnRunner]] as [string, Runner][])('%s runner', (_, runner) => {
  it('passes stdin and returns stdout', async () => {
    expect((await runner('cat', [], { input: 'hello' })).stdout).toBe('hello');
  });

  it('throws a CommandError with status and stderr on a non-zero exit', async () => {
    const err = await runner('sh', ['-c', 'echo oops >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect(err).toMatchObject({ exitCode: 3, stderr: 'oops\n', command: 'sh -c echo oops >&2; exit 3' });
  });

  it('returns the status instead when failure is allowed', async () => {
    expect(await runner('sh', ['-c', 'exit 4'], { allowFailure: true })).toMatchObject({ exitCode: 4 });
  });

  it('reports a program that does not exist even when failure is allowed', async () => {
    const err = await runner('/nonexistent/tool', [], { allowFailure: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).exitCode).toBeUndefined();
  });

  it('replaces or extends the environment, and always finds the system tools', async () => {
    const replaced = await runner('sh', ['-c', 'echo "$A-$HOME"; command -v ip'], { env: { A: 'x', PATH: '/nonexistent' }, replaceEnv: true });
    expect(replaced.stdout).toMatch(/^x-\n\/(usr\/)?s?bin\/ip\n$/);
    const extended = await runner('sh', ['-c', 'echo "$A-$HOME"'], { env: { A: 'y' } });
    expect(extended.stdout).toBe(`y-${process.env.HOME}\n`);
  });
});
