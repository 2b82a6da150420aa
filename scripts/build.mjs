// Bundles each program with esbuild and seals them, as assets of one dispatcher, into one
// executable (scripts/sea.mjs), so the result needs no node_modules and the build no network.
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { Script } from 'node:vm';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealExecutable } from './sea.mjs';
import { bundleProgram } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');

// The programs, bundled each on its own; the executable a node carries is one (below).
const programs = [
  { name: 'warren-cni', entry: 'cni/main.ts' },
  { name: 'warren-cni-server', entry: 'cni/resident/main.ts' },
  { name: 'warren-configgen', entry: 'configgen/main.ts' },
  { name: 'warren-agent', entry: 'node-agent/main.ts' },
];
// One executable, `warren`: a small dispatcher whose assets are the programs' bundles, each
// with V8's code cache for it (cmd/warren.ts), and a link per program named after it.
const ONE = { name: 'warren', entry: 'cmd/warren.ts', programs: { cni: 'warren-cni', 'cni-server': 'warren-cni-server', configgen: 'warren-configgen', agent: 'warren-agent' } };

const bundleDir = join(out, 'bundle');
mkdirSync(join(out, 'bin'), { recursive: true });
mkdirSync(bundleDir, { recursive: true });

for (const p of programs) await bundleProgram(join(root, p.entry), join(bundleDir, `${p.name}.cjs`));

const dispatcher = join(bundleDir, `${ONE.name}.cjs`);
await build({
  entryPoints: [join(root, ONE.entry)], bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true,
  outfile: dispatcher, logLevel: 'warning',
});
const assets = {};
for (const [program, name] of Object.entries(ONE.programs)) {
  const bundle = join(bundleDir, `${name}.cjs`);
  // Compiled as cmd/warren.ts compiles it (module wrapper, the same node), so V8 takes the cache.
  const cache = join(bundleDir, `${name}.cache`);
  writeFileSync(cache, new Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: name }).createCachedData());
  assets[`${program}.cjs`] = bundle;
  assets[`${program}.cache`] = cache;
}
const bin = join(out, 'bin', ONE.name);
sealExecutable({ main: dispatcher, output: bin, assets, workDir: bundleDir });
console.log(`built ${bin}`);
// Each link replaces what was there (an older build's executable) in one rename.
for (const name of Object.values(ONE.programs)) {
  const link = join(out, 'bin', name);
  const partial = `${link}.partial-${process.pid}`;
  rmSync(partial, { force: true });
  symlinkSync(ONE.name, partial);
  renameSync(partial, link);
  console.log(`linked ${link} -> ${ONE.name}`);
}

// The CNI binary directory as a node gets it (daemonset/warren.yaml, install-cni): `warren`,
// the small C program runtimes execute, which hands each call to the resident server, and
// beside it `warren-cni`, the standalone plugin it execs when the server does not answer.
// Static: it runs on the host, whatever its libc.
const cniDir = join(out, 'cni');
mkdirSync(cniDir, { recursive: true });
const shim = join(cniDir, 'warren');
execFileSync('cc', ['-O2', '-static', '-Wall', '-Wextra', '-Werror', '-o', `${shim}.partial`, join(root, 'cni', 'shim', 'shim.c')], { stdio: 'inherit' });
renameSync(`${shim}.partial`, shim);
// The resident server's process starter (cni/resident/spawner.c), beside the executable
// that runs the server.
const spawner = join(out, 'bin', 'warren-spawner');
execFileSync('cc', ['-O2', '-static', '-Wall', '-Wextra', '-Werror', '-o', `${spawner}.partial`, join(root, 'cni', 'resident', 'spawner.c')], { stdio: 'inherit' });
renameSync(`${spawner}.partial`, spawner);
const standalone = join(cniDir, 'warren-cni');
rmSync(`${standalone}.partial`, { force: true });
symlinkSync(join('..', 'bin', ONE.name), `${standalone}.partial`);
renameSync(`${standalone}.partial`, standalone);
console.log(`built ${shim}, linked ${standalone} -> ../bin/${ONE.name}`);
