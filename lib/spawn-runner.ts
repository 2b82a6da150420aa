// The runner for warren-cni, on node:child_process alone. A CNI plugin is a new
// process per call and loading execa costs about 16 ms of its start (measured: 70 ms
// against 54 ms for node with child_process only), a third of the ADD budget.
import { spawn } from 'node:child_process';
import { childEnv, settle, type Runner } from './runner.js';

/**
 * `via`: a program that execs the command (setpriv with options), started in its place;
 * exit statuses and errors still name the command itself.
 */
export function spawnRunnerVia(via: readonly string[]): Runner {
  return (file, args, options = {}) =>
    new Promise((resolve, reject) => {
      const argv = via.length > 0 ? [...via.slice(1), file, ...args] : args;
      const child = spawn(via[0] ?? file, argv, { env: childEnv(options), stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let failure: Error | undefined;
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.stdin.on('error', () => {}); // a child that exits without reading its input
      child.on('error', (e) => (failure = e));
      child.on('close', (code, signal) => {
        try {
          resolve(settle(file, args, options, {
            exitCode: failure || signal ? undefined : (code ?? undefined),
            stdout: Buffer.concat(out).toString(),
            stderr: failure ? failure.message : signal ? `killed by ${signal}` : Buffer.concat(err).toString(),
            cause: failure,
          }));
        } catch (e) {
          reject(e);
        }
      });
      child.stdin.end(options.input ?? '');
    });
}

export const spawnRunner: Runner = spawnRunnerVia([]);
