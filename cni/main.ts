// warren-cni: executed by the container runtime once per verb and attachment.
import { fstatSync, readSync, writeSync } from 'node:fs';
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

// No top-level await: the SEA bundle is CommonJS.
void dispatch({ env: process.env, stdin: isTerminal() ? '' : readStdin(), stdout: writeStdout }).then((code) => {
  process.exitCode = code;
});
