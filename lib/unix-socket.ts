// Whether something listens on a unix socket: how a daemon that has no other readiness
// signal (charon's VICI socket) is known to be up.
import { connect } from 'node:net';

export function acceptsConnections(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
