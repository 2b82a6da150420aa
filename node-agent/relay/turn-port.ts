// The local end of the way to the TURN server, whichever transport: a UDP socket of its
// own, or a TCP or TLS connection (nat/stream-port.ts). The TURN client sees only `port`.
import type { Socket } from 'node:dgram';
import type { TurnTlsSettings } from '../config.js';
import { connectStream } from '../nat/stream-port.js';
import { bindUdp, udpPort, type UdpPort } from '../nat/udp.js';
import type { TransportTarget, RelayTransport } from './turn-transports.js';
import type { Endpoint } from '../nat/stun-address.js';

/** A connection that does not open in this long is a site dropping it (the SYN gets no answer). */
export const STREAM_CONNECT_MS = 2000;

export interface TurnPort {
  readonly transport: RelayTransport;
  readonly server: Endpoint;
  readonly port: UdpPort;
  readonly localPort: number;
  /** A stream's end (the allocation went with it); never for UDP. */
  onEnd(listener: (why: string) => void): void;
  close(): void;
}

function udpTurnPort(socket: Socket, server: Endpoint): TurnPort {
  return {
    transport: 'udp', server, port: udpPort(socket), localPort: socket.address().port,
    onEnd: () => undefined,
    close: () => socket.close(),
  };
}

/** Opens the way to `target`; `udpLocalPort`: the port a UDP allocation to resume was made from. */
export async function openTurnPort(target: TransportTarget, tls: TurnTlsSettings | undefined, udpLocalPort = 0): Promise<TurnPort> {
  if (target.transport === 'udp') return udpTurnPort(await bindUdp(udpLocalPort), target.server);
  const stream = await connectStream({ server: target.server, transport: target.transport, tls, timeoutMs: STREAM_CONNECT_MS });
  return { transport: target.transport, server: target.server, port: stream, localPort: stream.localPort, onEnd: (l) => stream.onEnd(l), close: () => stream.close() };
}
