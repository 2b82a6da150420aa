// warren-cni: executed by the container runtime once per verb and attachment.
import { readFileSync } from 'node:fs';
import { dispatch } from './dispatch.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return ''; // no stdin (VERSION may be called without one)
  }
}

// No top-level await: the SEA bundle is CommonJS.
void dispatch({ env: process.env, stdin: readStdin(), stdout: (t) => process.stdout.write(t) }).then((code) => {
  process.exitCode = code;
});
