// Seals a CommonJS bundle into a single executable with Node's single executable
// applications (SEA): a copy of the installed node binary with the blob injected.
// Needs no network, unlike `pkg`, which downloads patched Node binaries.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const SENTINEL = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Makes `output` (an executable) from `main` (a CommonJS file); `assets` maps key -> file.
 * `snapshot`: run `main` at build time and start from V8's snapshot of its heap instead of
 * compiling it with a code cache (`main` then registers its entry with v8.startupSnapshot).
 */
export function sealExecutable({ main, output, assets = {}, workDir, snapshot = false }) {
  const blob = join(workDir, `${output.split('/').at(-1)}.blob`);
  const seaConfig = `${blob}.json`;
  writeFileSync(seaConfig, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, ...(snapshot ? { useSnapshot: true } : { useCodeCache: true }), assets }));
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'pipe' });
  // Sealed under a temporary name and renamed: a runtime executing the binary during a
  // rebuild must never find plain node (it would run the CNI config as a script).
  const partial = `${output}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  copyFileSync(process.execPath, partial);
  chmodSync(partial, 0o755);
  const postject = join(dirname(require.resolve('postject/package.json')), 'dist', 'cli.js');
  try {
    // postject warns about ELF note sections on every run; only a failure is worth showing.
    execFileSync(process.execPath, [postject, partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL], { stdio: 'pipe' });
  } catch (err) {
    rmSync(partial, { force: true });
    throw new Error(`postject failed for ${output}: ${err.stderr ?? err.message}`);
  }
  renameSync(partial, output);
}
