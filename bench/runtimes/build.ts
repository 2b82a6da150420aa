// The executables bench/runtimes.ts compares, built from the same esbuild bundles
// (scripts/bundle.mjs) under each runtime: Node SEA with V8's code cache (Warren's build
// today), Node SEA from a V8 startup snapshot, and Bun's compiled executables, with and
// without its bytecode cache. A build that fails is a finding, kept with its error.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../lib/errors.js';
import { bundleProgram } from '../../scripts/bundle.mjs';
import { sealExecutable } from '../../scripts/sea.mjs';
import { run } from '../../test/helpers/sh.js';
import { fetchBun } from './bun.js';

export type Runtime = 'sea-cache' | 'sea-snapshot' | 'bun' | 'bun-bytecode';
export type Program = 'minimal' | 'cni' | 'warren' | 'deps';

export const RUNTIME_NAMES: Record<Runtime, string> = {
  'sea-cache': 'Node SEA, code cache',
  'sea-snapshot': 'Node SEA, startup snapshot',
  bun: 'Bun --compile',
  'bun-bytecode': 'Bun --compile --bytecode',
};

export interface Built {
  /** `${program}/${runtime}` -> executable. */
  files: Map<string, string>;
  /** `${program}/${runtime}` -> why it could not be built. */
  failures: Map<string, string>;
  bunSkipped?: string;
  bundles: Record<'minimal' | 'cni', string>;
}

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, '..', '..', 'dist');

/** The line that says what went wrong, not the warnings around it. */
function firstError(err: unknown): string {
  const text = String((err as { stderr?: unknown }).stderr ?? '') || errorMessage(err);
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /^\w*Error\b|^error:/i.test(l.trim()));
  if (i < 0) return lines.find((l) => l.trim())?.trim() ?? 'failed';
  const at = lines.slice(i + 1).find((l) => l.trim().startsWith('at '));
  return `${lines[i]!.trim()}${at ? ` (${at.trim()})` : ''}`;
}

export async function buildCandidates(work: string): Promise<Built> {
  const files = new Map<string, string>();
  const failures = new Map<string, string>();
  const bundles = { minimal: join(work, 'minimal.cjs'), cni: join(dist, 'bundle', 'warren-cni.cjs') };
  const snapshotCni = join(work, 'cni-snapshot.cjs');
  const deps = join(work, 'deps.cjs');
  await bundleProgram(join(here, 'minimal-cni.ts'), bundles.minimal);
  await bundleProgram(join(here, 'cni-snapshot.ts'), snapshotCni);
  await bundleProgram(join(here, 'deps.ts'), deps);

  // Today's build is `make build`'s own executable.
  files.set('cni/sea-cache', join(dist, 'bin', 'warren-cni'));
  const seals: [string, string, boolean][] = [
    ['minimal/sea-cache', bundles.minimal, false],
    ['minimal/sea-snapshot', bundles.minimal, true],
    ['cni/sea-snapshot', snapshotCni, true],
    ['deps/sea-cache', deps, false],
    ['deps/sea-snapshot', deps, true],
  ];
  for (const [key, main, snapshot] of seals) {
    const output = join(work, key.replace('/', '-'));
    try {
      sealExecutable({ main, output, workDir: work, snapshot });
      files.set(key, output);
    } catch (err) {
      failures.set(key, firstError(err));
    }
  }

  const fetched = await fetchBun();
  if ('skipped' in fetched) return { files, failures, bunSkipped: fetched.skipped, bundles };
  const compiles: [string, string, boolean][] = [
    ['minimal/bun', bundles.minimal, false],
    ['minimal/bun-bytecode', bundles.minimal, true],
    ['cni/bun', bundles.cni, false],
    ['cni/bun-bytecode', bundles.cni, true],
    ['warren/bun-bytecode', join(here, 'bun-warren.ts'), true],
    ['deps/bun', deps, false],
    ['deps/bun-bytecode', deps, true],
  ];
  for (const [key, entry, bytecode] of compiles) {
    // The one executable is named as on a node, so a start is chosen as there.
    const output = key.startsWith('warren/') ? join(work, 'bun', 'warren') : join(work, key.replace('/', '-'));
    try {
      await run(fetched.bun, ['build', '--compile', ...(bytecode ? ['--bytecode'] : []), '--minify', entry, '--outfile', output], { timeoutMs: 120_000 });
      files.set(key, output);
    } catch (err) {
      failures.set(key, firstError(err));
    }
  }
  return { files, failures, bundles };
}
