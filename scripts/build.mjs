// Bundles each program with esbuild and seals it into one executable (scripts/sea.mjs),
// so the result needs no node_modules and the build needs no network.
import { build } from 'esbuild';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealExecutable } from './sea.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const require_ = (await import('node:module')).createRequire(import.meta.url);

// Programs and the files each one reads at run time (carried as SEA assets).
const programs = [
  { name: 'warren-cni', entry: 'cni/main.ts', assets: {} },
  { name: 'warren-configgen', entry: 'configgen/main.ts', assets: etcdProtos() },
  { name: 'warren-agent', entry: 'node-agent/main.ts', assets: etcdProtos() },
];

// etcd3 loads its gRPC definitions from disk when it is imported (TESTBED.md trap).
function etcdProtos() {
  const dir = join(dirname(require_.resolve('etcd3/package.json')), 'proto');
  const files = ['rpc.proto', 'kv.proto', 'auth.proto'];
  return Object.fromEntries(files.filter((f) => existsSync(join(dir, f))).map((f) => [`etcd3/proto/${f}`, join(dir, f)]));
}

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
    // SEA runs CommonJS: the ESM-only `import.meta.url` becomes the file's own URL.
    define: { 'import.meta.url': 'warrenImportMetaUrl' },
    banner: { js: 'var warrenImportMetaUrl=require("node:url").pathToFileURL(__filename).href;' },
  });
  const bin = join(out, 'bin', p.name);
  sealExecutable({ main: bundle, output: bin, assets: p.assets, workDir: join(out, 'bundle') });
  console.log(`built ${bin}`);
}
