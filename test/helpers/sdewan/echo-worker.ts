// Runs inside an emulated device's namespace (NatLab.startWorker): a TCP echo service on
// the device's OIP, and a client that connects from a chosen source address, so that a
// test can prove OIP-to-OIP TCP through the hubs, not only ICMP; and a probe that opens a
// connection every few milliseconds, for the interruptions a failover causes.
import { connect, createServer, type Server } from 'node:net';

let server: Server | undefined;

/**
 * Listens on host:port; each connection first gets `greeting` and a newline, then its own
 * bytes back. `{peer}` in the greeting is the address the connection came from.
 */
export async function serve(host: string, port: number, greeting: string): Promise<void> {
  if (server) throw new Error(`already serving on ${JSON.stringify(server.address())}`);
  const s = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`${greeting.replace('{peer}', socket.remoteAddress ?? '?')}\n`);
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

/** Connects (from localAddress, if given), sends one line, resolves with the greeting line and the echoed line. */
export async function request(o: { host: string; port: number; localAddress?: string; line: string; timeoutMs: number }): Promise<string> {
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

let probe: { stopped: boolean; results: [number, boolean][]; done: Promise<void> } | undefined;

/** One connection that must deliver a greeting line within timeoutMs. */
function greeted(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, localAddress });
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) finish(true);
    });
    socket.on('error', () => finish(false));
  });
}

/** Starts connecting to host:port every everyMs (each attempt given timeoutMs), recording [ms since epoch, answered]. */
export function startProbe(o: { host: string; port: number; everyMs: number; timeoutMs: number; localAddress?: string }): void {
  if (probe && !probe.stopped) throw new Error('a probe is already running');
  const state = { stopped: false, results: [] as [number, boolean][], done: Promise.resolve() };
  state.done = (async () => {
    while (!state.stopped) {
      const at = Date.now();
      const ok = await greeted(o.host, o.port, o.timeoutMs, o.localAddress);
      state.results.push([at, ok]);
      const rest = o.everyMs - (Date.now() - at);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  })();
  probe = state;
}

/** The running probe's record so far. */
export function probeRecord(): [number, boolean][] {
  return probe ? [...probe.results] : [];
}

/** Stops the probe; its record. */
export async function stopProbe(): Promise<[number, boolean][]> {
  if (!probe) return [];
  probe.stopped = true;
  await probe.done;
  return probe.results;
}
