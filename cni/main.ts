// warren-cni: executed by the container runtime once per verb and attachment.
import { dispatch } from './dispatch.js';

// Read to end of stream: a synchronous read of fd 0 returns EAGAIN when the runtime
// has not written the config yet (seen under 50 concurrent ADDs).
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return ''; // by hand, VERSION needs no config
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// No top-level await: the SEA bundle is CommonJS.
void readStdin()
  .then((stdin) => dispatch({ env: process.env, stdin, stdout: (t) => process.stdout.write(t) }))
  .then((code) => {
    process.exitCode = code;
  });
