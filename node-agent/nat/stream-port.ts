// A TURN server reached over TCP or TLS (RFC 8656 section 3.1), seen through the same
// narrow port as a UDP socket (udp.ts), so the TURN client is one code for every
// transport. The port is reliable: a transaction sends once and waits (RFC 8489 section
// 6.2.2), and the allocation lives as long as the connection, so its end is reported.
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { readFileSync } from 'node:fs';
import { TurnTransportError } from './errors.js';
import { formatEndpoint, type Endpoint } from './stun-address.js';
import { StreamFramer, toStream } from './stream-framing.js';
import { isChannelData } from './turn.js';
import type { UdpPort } from './udp.js';

/** Bytes queued on the connection beyond which relayed packets are dropped: about 40 ms at 200 Mbit/s. */
export const MAX_QUEUED_BYTES = 1 << 20;

export interface StreamPort extends UdpPort {
  readonly reliable: true;
  readonly transport: 'tcp' | 'tls';
  /** The connection's local port (what the server's 5-tuple names). */
  readonly localPort: number;
  /** Called once when the connection ends for any reason but close(); the allocation is gone with it. */
  onEnd(listener: (why: string) => void): void;
  close(): void;
}

export interface TlsSettings {
  /** The name the certificate must carry; the server's address when absent (its IP SAN). */
  serverName?: string;
  /** PEM of the CAs to trust; Node's bundled roots when absent. */
  caFile?: string;
}

export interface StreamConnectOptions {
  server: Endpoint;
  transport: 'tcp' | 'tls';
  tls?: TlsSettings;
  /** Connect (and for TLS the handshake) must be done by then: a site that drops the SYN never answers. */
  timeoutMs: number;
}

/** Opens the connection; rejects with TurnTransportError naming the server, transport and cause. */
export function connectStream(o: StreamConnectOptions): Promise<StreamPort> {
  const where = `${o.transport.toUpperCase()} ${formatEndpoint(o.server)}`;
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket = o.transport === 'tcp'
        ? tcpConnect({ host: o.server.address, port: o.server.port })
        : tlsConnect(tlsOptions(o.server, o.tls ?? {}));
    } catch (err) {
      reject(new TurnTransportError(`cannot connect to the TURN server over ${where}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    const fail = (why: string, cause?: unknown): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new TurnTransportError(`cannot connect to the TURN server over ${where}: ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail(`no connection after ${o.timeoutMs} ms`), o.timeoutMs);
    socket.once('error', (err) => fail(err.message, err));
    socket.once(o.transport === 'tcp' ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(streamPort(socket, o.server, o.transport));
    });
  });
}

function tlsOptions(server: Endpoint, tls: TlsSettings): ConnectionOptions {
  const ca = tls.caFile === undefined ? undefined : readFileSync(tls.caFile);
  // Node sends no SNI for an IP address and checks the certificate's IP SAN against it.
  return { host: server.address, port: server.port, ...(ca ? { ca } : {}), ...(tls.serverName ? { servername: tls.serverName } : {}) };
}

function streamPort(socket: Socket, server: Endpoint, transport: 'tcp' | 'tls'): StreamPort {
  const listeners = new Set<(data: Buffer, from: Endpoint) => void>();
  const endListeners = new Set<(why: string) => void>();
  const framer = new StreamFramer();
  let ended: string | undefined;
  const end = (why: string): void => {
    if (ended !== undefined) return;
    ended = why;
    socket.destroy();
    for (const l of endListeners) l(why);
  };
  socket.on('data', (chunk: Buffer) => {
    let frames: Buffer[];
    try {
      frames = framer.push(chunk);
    } catch (err) {
      end((err as Error).message);
      return;
    }
    for (const f of frames) for (const l of listeners) l(f, server);
  });
  socket.on('error', (err) => end(err.message));
  socket.on('close', () => end('the server closed the connection'));
  return {
    reliable: true,
    transport,
    localPort: socket.localPort ?? 0,
    send(data) {
      if (ended !== undefined) return Promise.reject(new TurnTransportError(`the ${transport.toUpperCase()} connection to ${formatEndpoint(server)} is closed: ${ended}`));
      // Relayed packets are datagrams to WireGuard: when the connection cannot keep up they
      // are dropped, as a full UDP socket drops them, instead of queueing without bound
      // (TCP's own retransmission would otherwise turn into latency). STUN requests always go.
      if (socket.writableLength > MAX_QUEUED_BYTES && isChannelData(data)) return Promise.resolve();
      socket.write(toStream(data));
      return Promise.resolve();
    },
    onMessage(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onEnd(listener) {
      endListeners.add(listener);
    },
    close() {
      ended ??= 'closed by this node';
      socket.destroy();
    },
  };
}
