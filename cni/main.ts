// warren-cni: the standalone plugin. Executed by the runtime directly (a conflist whose
// type is "warren-cni", or an install without the shim), or by the shim (cni/shim/shim.c)
// when the resident server did not answer: the shim then says why, and whether the server
// may have begun this ADD (README, "The resident fast path").
import { fstatSync, readSync, writeSync } from 'node:fs';
import { CLEAR_FIRST_ENV, FALLBACK_ENV } from '../lib/cni-resident.js';
import { dispatch } from './dispatch.js';

// Plain reads and writes on fds 0 and 1: process.stdin and process.stdout build
// streams whose modules cost milliseconds of every start. A runtime may hand over a
// non-blocking pipe whose data has not arrived yet (EAGAIN): wait briefly and retry.
function readStdin(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      if (code === 'EOF' || code === 'EBADF') break; // no stdin at all: VERSION by hand
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

// By hand at a terminal, VERSION needs no config: do not wait for one.
function isTerminal(): boolean {
  try {
    return fstatSync(0).isCharacterDevice();
  } catch {
    return false;
  }
}

function writeStdout(text: string): void {
  const data = Buffer.from(text);
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(1, data, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

async function main(): Promise<number> {
  const { [FALLBACK_ENV]: fallback, [CLEAR_FIRST_ENV]: clearFirst, ...env } = process.env;
  const stdin = isTerminal() ? '' : readStdin();
  // An ADD the server may have begun left a partial attachment whose IPAM allocation
  // host-local would refuse to make twice ("duplicate allocation is not allowed"): a DEL
  // clears it first, as a runtime does before it retries. Its own answer does not matter:
  // the ADD after it reports whatever is still wrong.
  if (clearFirst === '1' && env.CNI_COMMAND === 'ADD') {
    await dispatch({ env: { ...env, CNI_COMMAND: 'DEL' }, stdin, stdout: () => {}, fallback });
  }
  return dispatch({ env, stdin, stdout: writeStdout, fallback });
}

// No top-level await: the SEA bundle is CommonJS.
void main().then((code) => {
  process.exitCode = code;
});
