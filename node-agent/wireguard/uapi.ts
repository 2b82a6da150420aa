// wireguard-go's control socket. It lives on the filesystem, not in a network
// namespace, so one path serves every namespace (TESTBED): a name is unique per machine.
import { connect } from 'node:net';
import { UAPI_CONNECT_TIMEOUT_MS } from './tuning.js';

export const UAPI_DIR = '/var/run/wireguard';

export function uapiSocketPath(ifname: string): string {
  return `${UAPI_DIR}/${ifname}.sock`;
}

/**
 * Whether a wireguard-go serves `ifname`. Connecting is enough: a live daemon accepts,
 * a dead one leaves a socket file that refuses. Nothing is sent, because the answer
 * to `get` carries the private key.
 */
export function uapiAnswers(ifname: string, timeoutMs = UAPI_CONNECT_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(uapiSocketPath(ifname));
    const done = (alive: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
