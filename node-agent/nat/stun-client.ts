// Learning our public mapping with STUN Binding requests, and classifying how the NAT in
// front of us maps (RFC 5780 section 4.3, the mapping tests only).
import { StunErrorResponse } from './errors.js';
import { SOFTWARE } from './knobs.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from './stun-address.js';
import { transact, type TransactionOptions } from './stun-transaction.js';
import { bindingRequest, encodeStun, getErrorCode, parseBindingSuccess, type BindingResult } from './stun.js';
import type { UdpPort } from './udp.js';

export interface BindingProbe extends BindingResult {
  server: Endpoint;
  rttMs: number;
  transmissions: number;
}

export interface StunClientOptions extends TransactionOptions {
  software?: string;
}

/** Our reflexive address as `server` sees datagrams from this socket. */
export async function stunBinding(port: UdpPort, server: Endpoint, options: StunClientOptions = {}): Promise<BindingProbe> {
  const request = encodeStun(bindingRequest(undefined, options.software ?? SOFTWARE), { fingerprint: true });
  const { response, rttMs, transmissions } = await transact(port, server, request, options);
  if (response.cls === 'error') {
    const error = getErrorCode(response);
    throw new StunErrorResponse(formatEndpoint(server), error?.code ?? 0, error?.reason ?? 'no ERROR-CODE', 'Binding');
  }
  return { ...parseBindingSuccess(response), server, rttMs, transmissions };
}

/**
 * endpoint-independent: one public address for every destination (hole punching works).
 * address-dependent / address-and-port-dependent: a new one per destination address (and
 * port): a symmetric NAT, the peer cannot predict it. endpoint-dependent: one of those two,
 * the servers probed cannot tell which.
 */
export type MappingBehavior = 'endpoint-independent' | 'endpoint-dependent' | 'address-dependent' | 'address-and-port-dependent';

/**
 * Pure. RFC 5780 section 4.3: test I and II differ in server address (same mapping means
 * endpoint-independent); test III differs from II in port only, telling address-dependent
 * from address-and-port-dependent.
 */
export function classifyMapping(probes: readonly { server: Endpoint; mapped: Endpoint }[]): MappingBehavior {
  requireTwoAddresses(probes.map((p) => p.server));
  const first = probes[0]!.mapped;
  if (probes.every((p) => sameEndpoint(p.mapped, first))) return 'endpoint-independent';
  let samePortPairs = 0;
  for (const [i, a] of probes.entries()) {
    for (const b of probes.slice(i + 1)) {
      if (a.server.address !== b.server.address || a.server.port === b.server.port) continue;
      if (sameEndpoint(a.mapped, b.mapped)) return 'address-dependent';
      samePortPairs++;
    }
  }
  return samePortPairs > 0 ? 'address-and-port-dependent' : 'endpoint-dependent';
}

function requireTwoAddresses(servers: readonly Endpoint[]): void {
  if (new Set(servers.map((s) => s.address)).size < 2) throw new RangeError('classifying a mapping needs servers on at least two addresses');
}

export interface MappingReport {
  behavior: MappingBehavior;
  probes: BindingProbe[];
}

/**
 * Probes each server in turn from the same socket. Give [A:p, B:p] at least, or
 * [A:p, B:p, B:q] (coturn's other address and its alternate port) to tell the two
 * endpoint-dependent kinds apart.
 */
export async function probeMapping(port: UdpPort, servers: readonly Endpoint[], options: StunClientOptions = {}): Promise<MappingReport> {
  requireTwoAddresses(servers);
  const probes: BindingProbe[] = [];
  for (const server of servers) probes.push(await stunBinding(port, server, options));
  return { behavior: classifyMapping(probes), probes };
}
