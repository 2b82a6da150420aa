// warren-agent: one binary, one config file.
import { errorMessage } from '../lib/errors.js';
import { guardedWriter } from '../lib/output.js';
import { jsonLog } from './agent.js';
import { PROGRAM, runCli } from './cli.js';

const stderr = guardedWriter(process.stderr, () => {});
const stdout = guardedWriter(process.stdout, (err) => {
  stderr(`${PROGRAM}: cannot write to stdout: ${errorMessage(err)}\n`);
  process.exitCode = 1;
});
const stopSignal = new Promise<string>((resolve) => {
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve(s));
});

// No top-level await: the SEA bundle is CommonJS.
void runCli(process.argv.slice(2), { env: process.env, stdout, stderr, log: jsonLog, stopSignal }).then((code) => {
  process.exitCode = process.exitCode || code;
  // Timers of a stopped agent must not keep the process: everything was closed.
  if (code !== 0 || process.argv[2] !== 'run') return;
  setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
});
