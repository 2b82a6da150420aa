// A listening TCP socket inside another network namespace, for a server that runs in the
// test's own process (the emulated SCC): a short-lived child in the namespace opens it and
// hands it over IPC, the way Node's cluster module shares servers. The server then accepts
// connections in that namespace while its code, state and hooks stay here.
import { spawn } from 'node:child_process';

const CHILD = `
const net = require('node:net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const s = net.createServer();
s.on('error', (err) => { console.error(String(err)); process.exit(1); });
s.listen(port, host, () => process.send({ port: s.address().port }, s, () => { s.close(); process.disconnect(); }));
`;

export interface NetnsListener {
  /** What server.listen() takes. */
  handle: object;
  port: number;
}

/** Opens host:port (0: any) in the namespace at `netnsPath`. */
export function listenInNetns(netnsPath: string, host: string, port: number): Promise<NetnsListener> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', CHILD, host, String(port)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('message', (m: { port: number }, handle: unknown) => {
      const h = handle as { _handle?: object } | undefined;
      if (!h) return reject(new Error(`no socket from ${netnsPath}`));
      resolve({ handle: h._handle ?? h, port: m.port });
    });
    child.once('exit', (code) => {
      if (code) reject(new Error(`listening on ${host}:${port} in ${netnsPath}: ${stderr.trim() || `exit ${code}`}`));
    });
  });
}
