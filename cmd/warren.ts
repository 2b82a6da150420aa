// warren: the one executable of a node (cmd/program.ts decides which program a start
// means). The executable's own script is this small file; each program's bundle is an
// asset beside it with V8's code cache for it, compiled only when chosen: one script
// holding all three would cost every CNI call the compile of the agent (81 vs 41 ms for
// VERSION, 72 vs 39 MB).
import { writeSync } from 'node:fs';
import { Module } from 'node:module';
import { Script } from 'node:vm';
import { chooseProgram, type Program } from './program.js';

const choice = chooseProgram(process.argv0, process.argv.slice(2), process.env);
if ('usage' in choice) {
  writeSync(2, choice.usage);
  process.exit(2);
}
// The programs read their arguments from process.argv.slice(2), as when started by name.
if (choice.dropFirstArgument) process.argv.splice(2, 1);
run(choice.program);

function run(program: Program): void {
  const sea = require('node:sea') as typeof import('node:sea');
  if (!sea.isSea()) {
    writeSync(2, 'warren: the programs are assets of the built executable: run dist/bin/warren (make build)\n');
    process.exit(2);
  }
  const filename = `${process.execPath}#${program}`;
  const script = new Script(Module.wrap(sea.getAsset(`${program}.cjs`, 'utf8')), {
    filename,
    cachedData: Buffer.from(sea.getAsset(`${program}.cache`)),
  });
  const module = { exports: {} };
  // The SEA's own require: built-in modules only, all a bundle needs.
  (script.runInThisContext() as (...a: unknown[]) => void).call(module.exports, module.exports, require, module, filename, process.execPath);
}
