// warren-configgen: the DaemonSet's init container on every node, and a tool by hand.
import { hostname } from 'node:os';
import { execRunner } from '../lib/runner.js';
import { runCli } from './cli.js';

// No top-level await: the SEA bundle is CommonJS.
void runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  hostname: hostname(),
  runner: execRunner,
}).then((code) => {
  process.exitCode = code;
});
