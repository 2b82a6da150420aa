// One program as one CommonJS file with esbuild: what a single executable runs
// (scripts/build.mjs, and bench/runtimes.ts for the other runtimes it compares).
import { build } from 'esbuild';
import { inlineEtcd3Protos } from './etcd3-protos.mjs';

export async function bundleProgram(entry, outfile) {
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    outfile,
    logLevel: 'warning',
    // etcd3's .proto files are parsed at build time and inlined (scripts/etcd3-protos.mjs).
    plugins: [inlineEtcd3Protos()],
    // SEA runs CommonJS: `import.meta.url` becomes the file's own URL, computed only
    // when used (node:url is not free at start-up, and the CNI plugin never needs it).
    define: { 'import.meta': '__warrenImportMeta' },
    banner: { js: 'var __warrenImportMeta={get url(){return require("node:url").pathToFileURL(__filename).href}};' },
  });
}
