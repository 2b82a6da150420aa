// `warren` as Bun would compile it: the three programs' bundles (dist/bundle, from `make
// build`) in one executable, the one a start means chosen as cmd/warren.ts chooses it. Bun
// wraps each required CommonJS file in a function, so only the chosen one is evaluated.
import { writeSync } from 'node:fs';
import { chooseProgram } from '../../cmd/program.js';

const choice = chooseProgram(process.argv0, process.argv.slice(2), process.env);
if ('usage' in choice) {
  writeSync(2, choice.usage);
  process.exit(2);
}
if (choice.dropFirstArgument) process.argv.splice(2, 1);
if (choice.program === 'cni') require('../../dist/bundle/warren-cni.cjs');
else if (choice.program === 'configgen') require('../../dist/bundle/warren-configgen.cjs');
else require('../../dist/bundle/warren-agent.cjs');
