// Runs inside an emulated device's namespace (NatLab.startWorker): a TCP echo service on
// the device's OIP, and a client that connects from a chosen source address, so that a
// test can prove OIP-to-OIP TCP through the hubs, not only ICMP.
import { connect, createServer, type Server } from 'node:net';

let server: Server | undefined;

/** Listens on host:port; each connection first gets `greeting` and a newline, then its own bytes back. */
export async function serve(host: string, port: number, greeting: string): Promise<void> {
  if (server) throw new Error(`already serving on ${JSON.stringify(server.address())}`);
  const s = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`${greeting}\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  server = s;
}

/** Connects from localAddress, sends one line, resolves with the greeting line and the echoed line. */
export async function request(o: { host: string; port: number; localAddress: string; line: string; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port, localAddress: o.localAddress });
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no full answer from ${o.host}:${o.port} within ${o.timeoutMs} ms (got ${JSON.stringify(got)})`));
    }, o.timeoutMs);
    socket.on('connect', () => socket.write(`${o.line}\n`));
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.split('\n').length > 2) {
        clearTimeout(timer);
        socket.end();
        resolve(got);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
