// Integration tests drive the built binaries, never the sources: a stale or missing
// build is the first thing to report.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export default function setup(): void {
  for (const bin of [resolve('dist/bin/warren-cni'), resolve('dist/cni/warren'), resolve('dist/cni/warren-cni')]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`make test\` (it builds first) or \`make build\``);
  }
}
