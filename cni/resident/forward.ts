// The executable's side of the resident fast path: hand the call to the server and take
// its answer, or say why not and whether the server may have begun it. Never throws and
// never waits past the bounds of lib/cni-resident.ts.
import { connect } from 'node:net';
import {
  encodeLine, LineDecoder, parseMessage, RESIDENT_BOUNDS, type ResidentBounds, type ResidentRequest,
} from '../../lib/cni-resident.js';

export type Forwarded =
  | { kind: 'answered'; exitCode: number; stdout: string }
  | { kind: 'fallback'; started: boolean; reason: string };

export function forward(socketPath: string, request: ResidentRequest, bounds: ResidentBounds = RESIDENT_BOUNDS,
  now: () => number = () => performance.now()): Promise<Forwarded> {
  return new Promise((resolve) => {
    const begun = now();
    let connected = false;
    let lastHeard = begun;
    let settled = false;
    let watch: NodeJS.Timeout | undefined;
    const socket = connect({ path: socketPath });
    const decoder = new LineDecoder();
    const finish = (r: Forwarded): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearInterval(watch);
      socket.destroy();
      resolve(r);
    };
    const fallback = (started: boolean, reason: string): void => finish({ kind: 'fallback', started, reason });
    // Timers run before the poll phase that reads sockets: a starved process would judge a
    // server silent whose words are waiting unread. Judged after that phase (setImmediate).
    const connectTimer = setTimeout(() => setImmediate(() => {
      if (!connected) fallback(false, `no connection within ${bounds.connectMs} ms`);
    }), bounds.connectMs);
    socket.once('connect', () => {
      connected = true;
      lastHeard = now();
      socket.write(encodeLine(request));
      watch = setInterval(() => setImmediate(() => {
        const t = now();
        if (t - lastHeard > bounds.silenceMs) fallback(true, `nothing heard for ${Math.round(t - lastHeard)} ms`);
        else if (t - begun > bounds.totalMs) fallback(true, `no answer within ${bounds.totalMs} ms`);
      }), Math.max(1, Math.min(bounds.beatMs, bounds.silenceMs / 4)));
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      lastHeard = now();
      let lines: string[];
      try {
        lines = decoder.push(chunk);
      } catch (err) {
        return fallback(true, (err as Error).message);
      }
      for (const line of lines) {
        const m = parseMessage(line);
        if (!m) return fallback(true, 'an unreadable message');
        if (m.t === 'reply') return finish({ kind: 'answered', exitCode: m.exitCode, stdout: m.stdout });
        if (m.t === 'refused') return fallback(m.started, `refused: ${m.reason}`);
      }
    });
    socket.on('error', (err) => fallback(connected, err.message));
    socket.on('close', () => fallback(connected, 'closed without an answer'));
  });
}
