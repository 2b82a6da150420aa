// warren-configgen: the DaemonSet's init container on every node, and a tool by hand.
import { hostname } from 'node:os';
import { errorMessage } from '../lib/errors.js';
import { execRunner } from '../lib/runner.js';
import { PROGRAM, runCli } from './cli.js';
import { guardedWriter } from '../lib/output.js';
import { signalExitStatus, stopSignals } from '../lib/signals.js';

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

// A signal ends configgen between two steps, never inside one: a listener runs only when
// the event loop gets control, and every step is whole (an allocation is one etcd
// transaction, a file is replaced by a rename). The kernel's default action would end it
// anywhere, a temporary file left behind. The first signal exits (in the microtask right
// after its listener, before any other event): there is no second one to force.
void stopSignals(process).then((signal) => {
  stderr(`${PROGRAM}: ${signal}: stopped before finishing; what it wrote is whole, and running it again finishes the job\n`);
  process.exit(signalExitStatus(signal));
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
