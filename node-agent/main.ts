// warren-agent: one binary, one config file.
import { errorMessage } from '../lib/errors.js';
import { guardedWriter } from '../lib/output.js';
import { stopSignals } from '../lib/signals.js';
import { jsonLog } from './agent.js';
import { PROGRAM, runCli } from './cli.js';

const stderr = guardedWriter(process.stderr, () => {});
const stdout = guardedWriter(process.stdout, (err) => {
  stderr(`${PROGRAM}: cannot write to stdout: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
// Node's warnings as log lines (stderr carries JSON lines), less one: the single executable
// warns when a bundled package tries an optional module it does not carry (ws's bufferutil,
// node-fetch's encoding, when the Kubernetes client loads); each try falls back by itself.
const SEA_OPTIONAL_REQUIRE = 'Currently the require() provided to the main script embedded into single-executable applications';
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!w.message.startsWith(SEA_OPTIONAL_REQUIRE)) jsonLog('warn', w.message, { warning: w.name });
});

// Only `run` is a daemon: `status` and the others keep Node's default, ended by a signal.
const daemon = process.argv[2] === 'run';
const stopSignal = daemon
  ? stopSignals(process, {
    exit: (status) => process.exit(status),
    onForce: (signal, status) => jsonLog('warn', 'second stop signal: exiting now, without a graceful stop', { signal, status }),
  })
  : new Promise<never>(() => {});

// No top-level await: the SEA bundle is CommonJS.
void runCli(process.argv.slice(2), { env: process.env, stdout, stderr, log: jsonLog, stopSignal }).then((code) => {
  process.exitCode = process.exitCode || code;
  // Timers of a stopped agent must not keep the process: everything was closed.
  if (code !== 0 || !daemon) return;
  setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
});
