import { describe, expect, it } from 'vitest';
import { transportOrder, udpProbeDue } from '../../../../node-agent/relay/turn-transports.js';

const settings = { server: '192.0.2.10:3478', tcp: true, tls: { server: '192.0.2.10:443' } };
const names = (o: ReturnType<typeof transportOrder>) => o.map((t) => `${t.transport} ${t.server.address}:${t.server.port}`);

describe('the ways to the TURN server', () => {
  it('are UDP, then TCP to the same port, then TLS to its own', () => {
    expect(names(transportOrder(settings))).toEqual(['udp 192.0.2.10:3478', 'tcp 192.0.2.10:3478', 'tls 192.0.2.10:443']);
    expect(names(transportOrder({ server: '192.0.2.10:3478', tcp: false }))).toEqual(['udp 192.0.2.10:3478']);
  });

  it('start with the one that worked last, so a site that blocks UDP waits for its timeout once', () => {
    expect(names(transportOrder(settings, 'tls'))).toEqual(['tls 192.0.2.10:443', 'udp 192.0.2.10:3478', 'tcp 192.0.2.10:3478']);
    expect(names(transportOrder(settings, 'tcp'))).toEqual(['tcp 192.0.2.10:3478', 'udp 192.0.2.10:3478', 'tls 192.0.2.10:443']);
    // One no longer configured is not tried.
    expect(names(transportOrder({ server: '192.0.2.10:3478', tcp: true }, 'tls'))).toEqual(['udp 192.0.2.10:3478', 'tcp 192.0.2.10:3478']);
  });

  it('ask again for UDP only while the relay is on TCP or TLS, at most once per interval', () => {
    expect(udpProbeDue('tls', 0, 2000, 2000)).toBe(true);
    expect(udpProbeDue('tcp', 1000, 2999, 2000)).toBe(false);
    expect(udpProbeDue('udp', 0, 10_000, 2000)).toBe(false);
    expect(udpProbeDue(undefined, 0, 10_000, 2000)).toBe(false);
  });
});
