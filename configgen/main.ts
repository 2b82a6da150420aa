// warren-configgen: the DaemonSet's init container on every node, and a tool by hand.
import { hostname } from 'node:os';
import { errorMessage } from '../lib/errors.js';
import { execRunner } from '../lib/runner.js';
import { PROGRAM, runCli } from './cli.js';
import { guardedWriter } from '../lib/output.js';

// A reader that goes away is not a failure (configgen/output.ts); any other write error is.
let outputFailed = false;
const failed = (): void => {
  outputFailed = true;
  if (!process.exitCode) process.exitCode = 1;
};
const stderr = guardedWriter(process.stderr, failed);
const stdout = guardedWriter(process.stdout, (err) => {
  failed();
  stderr(`${PROGRAM}: cannot write to stdout: ${errorMessage(err)}\n`);
});

// No top-level await: the SEA bundle is CommonJS.
void runCli(process.argv.slice(2), {
  env: process.env,
  stdout,
  stderr,
  hostname: hostname(),
  runner: execRunner,
}).then((code) => {
  process.exitCode = outputFailed ? code || 1 : code;
});
