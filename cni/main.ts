// warren-cni: executed by the container runtime once per verb and attachment. It hands
// the call to the node's resident CNI server when one answers, and does the work itself
// when none does (README, "The resident fast path").
import { fstatSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { dispatch } from './dispatch.js';
import { forward } from './resident/forward.js';
import { delFirst, residentRoute } from './resident/route.js';
import { sharedPaths } from '../lib/cni-resident.js';
import { pathIdentities } from '../lib/path-identity.js';

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

function mountNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/mnt');
  } catch {
    return '';
  }
}

async function standalone(env: NodeJS.ProcessEnv, stdin: string, clearFirst: boolean): Promise<number> {
  // Its own answer does not matter: the ADD after it reports whatever is still wrong.
  if (clearFirst) await dispatch({ env: { ...env, CNI_COMMAND: 'DEL' }, stdin, stdout: () => {} });
  return dispatch({ env, stdin, stdout: writeStdout });
}

async function main(): Promise<number> {
  const env = process.env;
  const stdin = isTerminal() ? '' : readStdin();
  const route = residentRoute(env.CNI_COMMAND, stdin);
  if (!route) return standalone(env, stdin, false);
  const request = {
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    stdin,
    sentAt: Date.now(),
    mntns: mountNamespace(),
    views: pathIdentities(sharedPaths(env, route.config)),
  };
  const r = await forward(route.socket, request);
  if (r.kind === 'answered') {
    writeStdout(r.stdout);
    return r.exitCode;
  }
  return standalone(env, stdin, delFirst(env.CNI_COMMAND, r.started));
}

// No top-level await: the SEA bundle is CommonJS.
void main().then((code) => {
  process.exitCode = code;
});
