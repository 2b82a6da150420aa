// TURN over TCP and TLS (RFC 8656 section 3.1) against the lab's real coturn, from a site
// that lets nothing out but TCP 443: UDP and TCP 3478 get no answer there, TLS on 443
// allocates, and the relayed leg (UDP, coturn to the peer's relay) carries ChannelData both
// ways, frames of every size cut right out of the stream.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { createCa } from '../../../helpers/pki.js';
import { useNatLab, type NsWorker } from '../../../helpers/natlab.js';
import type { Relayed } from './host-worker.js';

const WORKER = fileURLToPath(new URL('./host-worker.ts', import.meta.url));

interface Allocated {
  handle: number;
  relayed: Endpoint;
  mapped?: Endpoint;
  ms: number;
}

describe('TURN client over TCP and TLS through coturn', () => {
  const lab = useNatLab();

  async function blockedHost(): Promise<NsWorker> {
    const site = await lab().addSite('home-router', { egress: 'tcp443' });
    return lab().startWorker(site.host, WORKER);
  }

  function overStream(w: NsWorker, transport: 'tcp' | 'tls', tls?: { serverName?: string; caFile?: string }): Promise<Allocated> {
    const { username, password } = lab().turn;
    const server = transport === 'tls' ? lab().turnTls.server : lab().turn.server;
    return w.call('turnAllocateStream', transport, server, username, password, tls);
  }

  it('from a site that lets only TCP 443 out: UDP and TCP 3478 get no answer, TLS on 443 allocates and relays both ways', async () => {
    const w = await blockedHost();
    const udpPort = await w.call<number>('open');
    await expect(w.call('stun', udpPort, lab().turn.server, { rtoMs: 250, maxTransmissions: 3, lastWaitMultiplier: 4 })).rejects.toMatchObject({ code: 'STUN_TIMEOUT' });
    await expect(overStream(w, 'tcp')).rejects.toMatchObject({ code: 'TURN_TRANSPORT', message: expect.stringMatching(/TCP 192\.0\.2\.10:3478: no connection after 3000 ms/) });

    const { caFile, serverName } = lab().turnTls;
    const a = await overStream(w, 'tls', { caFile, serverName });
    console.log(`TLS allocation from the TCP-443-only site: relay ${a.relayed.address}:${a.relayed.port} in ${a.ms.toFixed(1)} ms`);
    expect(a.relayed.address).toBe('192.0.2.10');

    // The peer: a symmetric NAT's host on a UDP allocation.
    const peerSite = await lab().addSite('symmetric');
    const p = await lab().startWorker(peerSite.host, WORKER);
    const pPort = await p.call<number>('open');
    const { server, username, password } = lab().turn;
    const b = await p.call<{ relayed: Endpoint }>('turnAllocate', pPort, server, username, password);

    await w.call('turnPermission', a.handle, [b.relayed]);
    await p.call('turnPermission', pPort, [a.relayed]);
    expect(await w.call<number>('turnBind', a.handle, b.relayed)).toBe(0x4000);
    expect(await p.call<number>('turnBind', pPort, a.relayed)).toBe(0x4000);
    // Lengths that need 0 to 3 bytes of padding on the stream, and one near a WireGuard packet.
    for (const text of ['a', 'ab', 'abc', 'abcd', 'x'.repeat(1401)]) {
      await w.call('turnSend', a.handle, b.relayed, text, 'channel');
      expect(await p.call<Relayed>('turnNext', pPort)).toEqual({ peer: a.relayed, text, via: 'channel' });
      await p.call('turnSend', pPort, a.relayed, `re ${text}`, 'channel');
      expect(await w.call<Relayed>('turnNext', a.handle)).toEqual({ peer: b.relayed, text: `re ${text}`, via: 'channel' });
    }
    // A Send indication over the stream too (coturn hands it to the peer on its channel).
    await w.call('turnSend', a.handle, b.relayed, 'by indication', 'indication');
    expect(await p.call<Relayed>('turnNext', pPort)).toMatchObject({ peer: a.relayed, text: 'by indication' });
    await w.call('turnClose', a.handle);
    await p.call('turnClose', pPort);
  });

  it('over plain TCP where TCP 3478 leaves the site', async () => {
    const site = await lab().addSite('home-router');
    const w = await lab().startWorker(site.host, WORKER);
    const a = await overStream(w, 'tcp');
    // The mapped address is the site's public one: the TCP connection was NATed as UDP would be.
    expect(a.mapped?.address).toBe(site.publicAddress);
    await w.call('turnClose', a.handle);
  });

  it('checks the server\'s certificate: by its IP SAN without a name, and refuses another CA or another name', async () => {
    const w = await blockedHost();
    const { caFile, serverName } = lab().turnTls;
    const byAddress = await overStream(w, 'tls', { caFile });
    await w.call('turnClose', byAddress.handle);

    const other = await createCa(lab().dir, 'other-ca');
    await expect(overStream(w, 'tls', { caFile: other.cert, serverName }))
      .rejects.toMatchObject({ code: 'TURN_TRANSPORT', message: expect.stringMatching(/TLS 192\.0\.2\.10:443: .*(certificate|self.signed)/i) });
    await expect(overStream(w, 'tls', { caFile, serverName: 'other.natlab' }))
      .rejects.toMatchObject({ code: 'TURN_TRANSPORT', message: expect.stringMatching(/other\.natlab/) });
    // Node's public roots (no caFile) do not know the lab's CA either.
    await expect(overStream(w, 'tls', { serverName })).rejects.toMatchObject({ code: 'TURN_TRANSPORT' });
  });
});
