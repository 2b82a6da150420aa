// The narrow view of a UDP socket that STUN and TURN clients need. The socket is shared
// (later with WireGuard's port rewrite, and TURN with STUN): every consumer subscribes to
// all datagrams and keeps only those it owns.
import { createSocket, type Socket } from 'node:dgram';
import type { Endpoint } from './stun-address.js';

export interface UdpPort {
  /** A stream underneath (stream-port.ts): a request is sent once, never retransmitted (RFC 8489 section 6.2.2). */
  readonly reliable?: boolean;
  send(data: Buffer, to: Endpoint): Promise<void>;
  /** Returns the function that unsubscribes. */
  onMessage(listener: (data: Buffer, from: Endpoint) => void): () => void;
}

export function udpPort(socket: Socket): UdpPort {
  return {
    send: (data, to) => new Promise((resolve, reject) => socket.send(data, to.port, to.address, (err) => (err ? reject(err) : resolve()))),
    onMessage(listener) {
      const handler = (data: Buffer, rinfo: { address: string; port: number }): void => listener(data, { address: rinfo.address, port: rinfo.port });
      socket.on('message', handler);
      return () => socket.off('message', handler);
    },
  };
}

/** IPv4 loopback: where WireGuard's relay links and the port-share self-check talk locally. */
export const LOOPBACK = '127.0.0.1';

/** Binds `socket` to `port` (0: any) on `address` (all when omitted); a failed bind rejects instead of emitting 'error' on nobody. */
export function bindSocket(socket: Socket, port: number, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/** A new UDP socket, bound as bindSocket does; closed again when the bind fails. */
export async function bindUdp(port: number, address?: string): Promise<Socket> {
  const socket = createSocket('udp4');
  try {
    await bindSocket(socket, port, address);
  } catch (err) {
    socket.close();
    throw err;
  }
  return socket;
}

/** Linux's net.ipv4.ip_default_ttl: Node cannot read a socket's TTL back. */
export const DEFAULT_TTL = 64;

/**
 * Sends one datagram with a small TTL so it opens our own NAT mapping but dies inside the
 * internet before a far NAT can record it (the conntrack trap, see test/helpers/natlab.ts).
 * The TTL is restored only once the datagram is out: dgram sends on a later tick, so
 * nothing else may be sent on this socket meanwhile.
 */
export async function sendWithTtl(socket: Socket, data: Buffer, to: Endpoint, ttl: number, restoreTtl = DEFAULT_TTL): Promise<void> {
  socket.setTTL(ttl);
  try {
    await udpPort(socket).send(data, to);
  } finally {
    socket.setTTL(restoreTtl);
  }
}
