// Unix sockets: listening on one no other user gets a moment to connect to, and whether
// something listens on one (how a daemon that has no other readiness signal, charon's
// VICI socket, is known to be up).
import { connect, type Server } from 'node:net';

/**
 * Listens on `path`, the socket file created with `mode` (permission bits). bind() creates
 * it with 0777 less the umask, so the bind runs under the umask that leaves `mode`: a
 * chmod afterwards would leave a window where the file follows the process's umask. The
 * umask is process-wide: it is restored in the same tick, before any other code runs
 * (listen() binds a path synchronously; only its 'listening' and 'error' events come later).
 */
export function listenUnix(server: Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o777 & ~mode);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
}

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
