// Two agents on one node for a moment: the DaemonSet surges (the new pod starts before the
// old one stops) so that a rolling update costs no more than the swap itself. The new agent
// asks the running one, over a unix socket in the shared state directory, to let go of
// what only one may hold (the STUN/probe port, the TURN allocation's port, the relay's
// loopback ports, the metrics port); the old one stops, saving the relay for its successor
// (relay/relay-state.ts), answers, and idles until its pod is deleted. Without an answer,
// nothing is lost: the new agent starts as after a crash.
import { existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

export const HANDOVER_SOCKET = 'agent-handover.sock';
const REQUEST = 'release\n';
const ANSWER = 'released\n';

export const handoverSocket = (stateDir: string): string => join(stateDir, HANDOVER_SOCKET);

export type HandoverOutcome = 'released' | 'no agent' | 'no answer';

/** Serves the next agent: `release` runs once however often it is asked. */
export async function serveHandover(path: string, release: () => Promise<void>): Promise<Server> {
  if (existsSync(path)) unlinkSync(path); // a killed agent's
  let released: Promise<void> | undefined;
  const server = createServer((socket) => {
    let text = '';
    socket.on('error', () => {});
    socket.on('data', (d) => {
      text += d.toString();
      if (text.length > REQUEST.length) return void socket.destroy();
      if (text !== REQUEST) return;
      released ??= release();
      released.then(() => socket.end(ANSWER), () => socket.end(ANSWER));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

/** Asks the agent serving `path` to let go; 'no agent' when none listens there. */
export function requestHandover(path: string, timeoutMs: number): Promise<HandoverOutcome> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer');
    }, timeoutMs);
    const done = (o: HandoverOutcome): void => {
      clearTimeout(timer);
      resolve(o);
    };
    socket.on('connect', () => socket.write(REQUEST));
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', () => done('no agent'));
    socket.on('end', () => done(text === ANSWER ? 'released' : 'no answer'));
  });
}
