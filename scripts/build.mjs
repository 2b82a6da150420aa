// Bundles each program with esbuild and seals it into one executable (scripts/sea.mjs),
// so the result needs no node_modules and the build needs no network.
import { build } from 'esbuild';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealExecutable } from './sea.mjs';
import { inlineEtcd3Protos } from './etcd3-protos.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');

// Programs and the files each one reads at run time (carried as SEA assets).
const programs = [
  { name: 'warren-cni', entry: 'cni/main.ts', assets: {} },
  // etcd3's .proto files are parsed at build time and inlined (scripts/etcd3-protos.mjs).
  { name: 'warren-configgen', entry: 'configgen/main.ts', assets: {} },
  { name: 'warren-agent', entry: 'node-agent/main.ts', assets: {} },
];

const only = process.argv.slice(2);
mkdirSync(join(out, 'bin'), { recursive: true });
mkdirSync(join(out, 'bundle'), { recursive: true });

for (const p of programs) {
  if (only.length && !only.includes(p.name)) continue;
  if (!existsSync(join(root, p.entry))) continue; // program not written yet
  const bundle = join(out, 'bundle', `${p.name}.cjs`);
  await build({
    entryPoints: [join(root, p.entry)],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    outfile: bundle,
    logLevel: 'warning',
    plugins: [inlineEtcd3Protos()],
    // SEA runs CommonJS: `import.meta.url` becomes the file's own URL, computed only
    // when used (node:url is not free at start-up, and the CNI plugin never needs it).
    define: { 'import.meta': '__warrenImportMeta' },
    banner: { js: 'var __warrenImportMeta={get url(){return require("node:url").pathToFileURL(__filename).href}};' },
  });
  const bin = join(out, 'bin', p.name);
  sealExecutable({ main: bundle, output: bin, assets: p.assets, workDir: join(out, 'bundle') });
  console.log(`built ${bin}`);
}
