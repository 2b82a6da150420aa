// Two nodes' proxies joined by an in-memory relay fabric (the TURN server's part), with
// real UDP sockets on loopback standing in for each node's WireGuard port.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { formatEndpoint, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import type { TurnData } from '../../../../node-agent/nat/turn-client.js';
import { INITIATION_RESEND_FOR_MS, INITIATION_RESEND_MS, RelayProxy, ROAM_NOTICE_MS, type Relay } from '../../../../node-agent/relay/relay-proxy.js';
import { waitFor } from '../../../helpers/sh.js';
import { FakeTimers } from '../nat/fake-net.js';

class FabricRelay implements Relay {
  readonly permissions = new Set<string>();
  readonly channels: string[] = [];
  private listeners = new Set<(d: TurnData) => void>();
  constructor(readonly relayed: Endpoint, private readonly fabric: Map<string, FabricRelay>) {
    fabric.set(formatEndpoint(relayed), this);
  }
  async createPermission(peers: readonly Endpoint[]): Promise<void> {
    for (const p of peers) this.permissions.add(p.address);
  }
  async bindChannel(peer: Endpoint): Promise<number> {
    this.channels.push(formatEndpoint(peer));
    return 0x4000 + this.channels.length - 1;
  }
  async send(peer: Endpoint, data: Buffer): Promise<void> {
    const to = this.fabric.get(formatEndpoint(peer));
    // As coturn: the receiving allocation delivers only from permitted addresses.
    if (to && to.permissions.has(this.relayed.address)) for (const l of to.listeners) l({ peer: this.relayed, data, via: 'channel' });
  }
  onData(listener: (d: TurnData) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

const sockets: Socket[] = [];
const proxies: RelayProxy[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const p of proxies.splice(0)) p.close();
});

async function wgStandIn(): Promise<{ socket: Socket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { socket, port: socket.address().port, received };
}

function endpointOf(text: string): { address: string; port: number } {
  const [address, port] = text.split(':');
  return { address: address!, port: Number(port) };
}

/** A proxy on a fake clock whose relay records what it is given to send instead of sending it. */
async function recordingProxy(): Promise<{ wgA: Awaited<ReturnType<typeof wgStandIn>>; timers: FakeTimers; proxyA: RelayProxy; sent: Buffer[]; closed: number[] }> {
  const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, new Map());
  const wgA = await wgStandIn();
  const timers = new FakeTimers();
  const closed: number[] = [];
  const proxyA = new RelayProxy({ relay: relayA, wgPort: wgA.port, timers, onLinkRetiring: () => closed.push(timers.now()) });
  proxies.push(proxyA);
  const sent: Buffer[] = [];
  relayA.send = async (_p, d) => void sent.push(d);
  return { wgA, timers, proxyA, sent, closed };
}

describe('RelayProxy', () => {
  it('carries datagrams both ways, and the side that did not choose the relay answers through it', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const relayB = new FabricRelay({ address: '192.0.2.10', port: 50002 }, fabric);
    const wgA = await wgStandIn();
    const wgB = await wgStandIn();
    const errors: unknown[] = [];
    const trafficA = { sentBytes: 1000, receivedBytes: 2000 }; // what an earlier allocation carried
    const proxyA = new RelayProxy({ relay: relayA, traffic: trafficA, wgPort: wgA.port, onError: (e) => errors.push(e) });
    const proxyB = new RelayProxy({ relay: relayB, wgPort: wgB.port, onError: (e) => errors.push(e) });
    proxies.push(proxyA, proxyB);
    // B must accept A's relay address before anything arrives (coturn's rule).
    await relayB.createPermission([relayA.relayed]);

    // Node A decides to relay to B: WireGuard A sends to the endpoint the proxy gives.
    const toB = endpointOf(await proxyA.endpointFor(relayB.relayed));
    wgA.socket.send(Buffer.from('handshake initiation'), toB.port, toB.address);
    await waitFor('B to receive', () => wgB.received.length === 1);
    expect(wgB.received[0]!.toString()).toBe('handshake initiation');

    // WireGuard B answers whoever sent it: the local socket B's proxy opened for A.
    const fromA = proxyB.stats()[0]!;
    expect(fromA.peerRelay).toBe('192.0.2.10:50001');
    const back = endpointOf(fromA.localEndpoint);
    wgB.socket.send(Buffer.from('handshake response'), back.port, back.address);
    await waitFor('A to receive', () => wgA.received.length === 1);
    expect(wgA.received[0]!.toString()).toBe('handshake response');

    expect(relayA.channels).toEqual(['192.0.2.10:50002']);
    expect(proxyA.stats()).toEqual([{ peerRelay: '192.0.2.10:50002', localEndpoint: `127.0.0.1:${toB.port}`, toPeerBytes: 20, fromPeerBytes: 18 }]);
    expect(trafficA).toEqual({ sentBytes: 1020, receivedBytes: 2018 });
    expect(errors).toEqual([]);
  });

  it('sends a handshake initiation again until the peer answers: the first one met no permission on the peer\'s side', async () => {
    const fabric = new Map<string, FabricRelay>();
    // Two TURN servers: B's allocation takes nothing from A's address until B opens its link.
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const relayB = new FabricRelay({ address: '198.51.100.20', port: 50002 }, fabric);
    const wgA = await wgStandIn();
    const wgB = await wgStandIn();
    const proxyA = new RelayProxy({ relay: relayA, wgPort: wgA.port });
    const proxyB = new RelayProxy({ relay: relayB, wgPort: wgB.port });
    proxies.push(proxyA, proxyB);
    const sentByA: Buffer[] = [];
    const send = relayA.send.bind(relayA);
    relayA.send = async (p, d) => {
      sentByA.push(d);
      await send(p, d);
    };
    const initiation = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(144, 7)]);
    const toB = endpointOf(await proxyA.endpointFor(relayB.relayed));
    wgA.socket.send(initiation, toB.port, toB.address);
    await waitFor('A to relay the initiation', () => sentByA.length === 1);
    expect(wgB.received).toEqual([]); // dropped: no permission on B's allocation yet

    // B decides to relay a moment later; the next copy of the initiation gets through.
    const t0 = Date.now();
    const back = endpointOf(await proxyB.endpointFor(relayA.relayed));
    await waitFor('B to receive the initiation', () => wgB.received.length >= 1, 2_000, 10);
    expect(Date.now() - t0).toBeLessThan(INITIATION_RESEND_MS + 200);
    expect(wgB.received[0]).toEqual(initiation);

    // B's answer ends the copies: none after it.
    wgB.socket.send(Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.alloc(88)]), back.port, back.address);
    await waitFor('A to receive the response', () => wgA.received.length === 1);
    const copies = sentByA.length;
    await new Promise((r) => setTimeout(r, INITIATION_RESEND_MS * 3));
    expect(sentByA.length).toBe(copies);
  });

  it('stops sending an unanswered initiation again after INITIATION_RESEND_FOR_MS, and never copies other messages', async () => {
    const { wgA, timers, proxyA, sent } = await recordingProxy();
    const link = endpointOf(await proxyA.endpointFor({ address: '198.51.100.20', port: 50002 }));
    wgA.socket.send(Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.alloc(60)]), link.port, link.address); // data
    wgA.socket.send(Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(144)]), link.port, link.address);
    await waitFor('both relayed', () => sent.length === 2);
    await timers.advance(INITIATION_RESEND_FOR_MS * 3);
    expect(timers.pending).toBe(0);
    const initiations = sent.filter((d) => d[0] === 1).length;
    expect(sent.filter((d) => d[0] === 4)).toHaveLength(1);
    expect(initiations).toBe(INITIATION_RESEND_FOR_MS / INITIATION_RESEND_MS); // the original and 7 copies
  });

  it('ignores datagrams on a link from anything but the local WireGuard port', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const wgA = await wgStandIn();
    const intruder = await wgStandIn();
    const proxyA = new RelayProxy({ relay: relayA, wgPort: wgA.port });
    proxies.push(proxyA);
    const sent: Buffer[] = [];
    relayA.send = async (_p, d) => void sent.push(d);
    const link = endpointOf(await proxyA.endpointFor({ address: '192.0.2.10', port: 50009 }));
    intruder.socket.send(Buffer.from('not wireguard'), link.port, link.address);
    wgA.socket.send(Buffer.from('wireguard'), link.port, link.address);
    await waitFor('the WireGuard datagram to be relayed', () => sent.length === 1);
    expect(sent.map(String)).toEqual(['wireguard']);
  });

  it('forgets a link and opens a fresh one when asked again', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const proxyA = new RelayProxy({ relay: relayA, wgPort: 9 });
    proxies.push(proxyA);
    const peer = { address: '192.0.2.10', port: 50002 };
    const first = await proxyA.endpointFor(peer);
    expect(await proxyA.endpointFor(peer)).toBe(first);
    proxyA.forget(peer);
    expect(proxyA.stats()).toEqual([]);
    await proxyA.endpointFor(peer);
    expect(proxyA.stats()).toHaveLength(1);
  });

  it('forgets a link later when asked to: WireGuard still sends to it until its endpoint moves, and asking again calls it off', async () => {
    const { wgA, timers, proxyA, sent, closed } = await recordingProxy();
    const peer = { address: '198.51.100.20', port: 50002 };
    const link = endpointOf(await proxyA.endpointFor(peer));
    proxyA.forget(peer, 3000);
    await timers.advance(2999);
    wgA.socket.send(Buffer.from('still relayed'), link.port, link.address);
    await waitFor('the datagram sent while the link lingers to be relayed', () => sent.length === 1);
    await timers.advance(1);
    expect(proxyA.stats()).toEqual([]);
    // The agent is told, to set WireGuard's endpoint again (it may have roamed to the link).
    expect(closed).toHaveLength(1);

    await proxyA.endpointFor(peer);
    proxyA.forget(peer, 3000);
    await proxyA.endpointFor(peer); // the peer is relayed again before the link closed
    await timers.advance(10_000);
    expect(proxyA.stats()).toHaveLength(1);
  });

  it('tells at once, at most every ROAM_NOTICE_MS, when a lingering link delivers the peer\'s packets, and hands no lingering link on', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const relayB = new FabricRelay({ address: '192.0.2.10', port: 50002 }, fabric);
    await relayA.createPermission([relayB.relayed]);
    const wgA = await wgStandIn();
    const timers = new FakeTimers();
    const told: number[] = [];
    const proxyA = new RelayProxy({ relay: relayA, wgPort: wgA.port, timers, onLinkRetiring: () => told.push(timers.now()) });
    proxies.push(proxyA);
    await proxyA.endpointFor(relayB.relayed);
    await relayB.send(relayA.relayed, Buffer.from('relayed while wanted'));
    await waitFor('the datagram to reach WireGuard', () => wgA.received.length === 1);
    expect(told).toEqual([]); // a link in use: WireGuard is meant to point at it
    expect(proxyA.ports()).toHaveLength(1);

    proxyA.forget(relayB.relayed, 3000); // the peer went direct
    expect(proxyA.ports()).toEqual([]); // a new allocation or a successor would keep it forever
    await relayB.send(relayA.relayed, Buffer.from('the peer still relays'));
    await waitFor('it to reach WireGuard', () => wgA.received.length === 2);
    expect(told).toEqual([0]); // WireGuard roamed to the link: its endpoint is set again now, not in 3 s
    await relayB.send(relayA.relayed, Buffer.from('again'));
    await waitFor('it to reach WireGuard', () => wgA.received.length === 3);
    expect(told).toEqual([0]);
    await timers.advance(ROAM_NOTICE_MS);
    await relayB.send(relayA.relayed, Buffer.from('later'));
    await waitFor('it to reach WireGuard', () => wgA.received.length === 4);
    expect(told).toEqual([0, ROAM_NOTICE_MS]);
  });

  it('a successor reopens the links on the ports WireGuard already sends to, and reports them', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const relayB = new FabricRelay({ address: '192.0.2.10', port: 50002 }, fabric);
    await relayB.createPermission([relayA.relayed]);
    const wgA = await wgStandIn();
    const wgB = await wgStandIn();
    proxies.push(new RelayProxy({ relay: relayB, wgPort: wgB.port }));
    let saved = 0;
    const first = new RelayProxy({ relay: relayA, wgPort: wgA.port, onLinks: () => saved++ });
    const endpoint = endpointOf(await first.endpointFor(relayB.relayed));
    expect(saved).toBe(1);
    const ports = first.ports();
    expect(ports).toEqual([{ peer: relayB.relayed, port: endpoint.port }]);
    first.close();

    const next = new RelayProxy({ relay: relayA, wgPort: wgA.port, ports });
    proxies.push(next);
    await next.restore();
    expect(next.ports()).toEqual(ports);
    // WireGuard, never told anything, keeps sending to the same endpoint: it arrives.
    wgA.socket.send(Buffer.from('after the swap'), endpoint.port, endpoint.address);
    await waitFor('B to receive through the reopened link', () => wgB.received.length === 1);
    expect(wgB.received[0]!.toString()).toBe('after the swap');
  });

  it('takes any port when the one a predecessor had is taken', async () => {
    const fabric = new Map<string, FabricRelay>();
    const relayA = new FabricRelay({ address: '192.0.2.10', port: 50001 }, fabric);
    const squatter = await wgStandIn();
    const peer = { address: '192.0.2.10', port: 50002 };
    const proxy = new RelayProxy({ relay: relayA, wgPort: 9, ports: [{ peer, port: squatter.port }] });
    proxies.push(proxy);
    const link = endpointOf(await proxy.endpointFor(peer));
    expect(link.port).not.toBe(squatter.port);
    expect(proxy.ports()).toEqual([{ peer, port: link.port }]);
  });
});
