// Which way to the TURN server, in what order (RFC 8656 section 3.1 allows UDP, TCP and
// TLS; the relayed leg to peers is UDP whichever it is). UDP first: it is the cheapest and
// the only one WireGuard's packets cross without head-of-line blocking. TCP to the same
// port when UDP gets no answer (a site that blocks UDP), then TLS (usually on 443: a site
// that lets nothing out but HTTPS sees a TLS connection to 443). The way that worked last
// is tried first, so a site that blocks UDP pays UDP's timeout once, not at every new
// allocation; a separate probe (udpProbeDue) moves the node back to UDP when it opens.
import { configEndpoint, type TurnSettings } from '../config.js';
import type { Endpoint } from '../nat/stun-address.js';

export type RelayTransport = 'udp' | 'tcp' | 'tls';

export interface TransportTarget {
  transport: RelayTransport;
  server: Endpoint;
}

/** Pure: the transports the settings allow, the one that worked last first, then UDP, TCP, TLS. */
export function transportOrder(t: Pick<TurnSettings, 'server' | 'tcp' | 'tls'>, lastWorked?: RelayTransport): TransportTarget[] {
  const all: TransportTarget[] = [
    { transport: 'udp', server: configEndpoint(t.server) },
    ...(t.tcp ? [{ transport: 'tcp' as const, server: configEndpoint(t.server) }] : []),
    ...(t.tls ? [{ transport: 'tls' as const, server: configEndpoint(t.tls.server) }] : []),
  ];
  const first = all.find((x) => x.transport === lastWorked);
  return first ? [first, ...all.filter((x) => x !== first)] : all;
}

/** Pure: a relay over TCP or TLS asks, now and then, whether UDP answers again. */
export function udpProbeDue(transport: RelayTransport | undefined, lastProbeAt: number, now: number, everyMs: number): boolean {
  return transport !== undefined && transport !== 'udp' && now - lastProbeAt >= everyMs;
}
