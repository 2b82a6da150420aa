// Bun for bench/runtimes.ts, from the npm registry (its platform package ships the binary)
// into a cache outside the repository, fetched once. Nothing of Warren's build needs it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import { run } from '../../test/helpers/sh.js';

export const BUN_VERSION = '1.4.5';
const CACHE = '/var/cache/warren/bun';

/** The bun binary, or why there is none. */
export async function fetchBun(): Promise<{ bun: string } | { skipped: string }> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skipped: `no Bun package picked for ${process.platform}-${process.arch}` };
  // The plain x64 build needs AVX2 and dies with SIGILL without it.
  const pkg = / avx2( |$)/m.test(readFileSync('/proc/cpuinfo', 'utf8')) ? '@oven/bun-linux-x64' : '@oven/bun-linux-x64-baseline';
  const dir = join(CACHE, `${pkg.split('/')[1]}-${BUN_VERSION}`);
  const bun = join(dir, 'package', 'bin', 'bun');
  if (existsSync(bun)) return { bun };
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.fetch-'));
  try {
    const packed = JSON.parse(await run('npm', ['pack', `${pkg}@${BUN_VERSION}`, '--json', '--pack-destination', tmp], { timeoutMs: 300_000 })) as { filename: string }[];
    await run('tar', ['-xzf', join(tmp, packed[0]!.filename), '-C', tmp]);
    await run(join(tmp, 'package', 'bin', 'bun'), ['--version']);
    renameSync(join(tmp, 'package'), join(dir, 'package'));
    return { bun };
  } catch (err) {
    return { skipped: errorMessage(err).split('\n')[0]! };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
