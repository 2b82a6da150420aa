// The prober's own logic: asking several STUN servers at once and tolerating some silent,
// refusing to ask when the rewrite check fails, and keeping a punch's small TTL from
// leaking onto other datagrams. STUN servers are tiny responders on loopback; the rewrite
// check is stubbed here (it has its own test, and real nftables in the integration tests).
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { StunTimeoutError } from '../../../../node-agent/nat/errors.js';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { bindingSuccess, decodeStun, encodeStun, isStun } from '../../../../node-agent/nat/stun.js';
import { sendWithTtl, udpPort } from '../../../../node-agent/nat/udp.js';
import { PortShareInactiveError } from '../../../../node-agent/traversal/errors.js';
import { PUNCH_PAYLOAD } from '../../../../node-agent/traversal/knobs.js';
import { Prober } from '../../../../node-agent/traversal/prober.js';

const open: { close(): unknown }[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

/** A Binding responder on `address` reporting the source it saw (answer: false keeps it silent). */
async function stunServer(address: string, answer = true): Promise<{ endpoint: Endpoint; requests: () => number }> {
  const socket = createSocket('udp4');
  open.push(socket);
  let requests = 0;
  socket.on('message', (data, rinfo) => {
    if (!isStun(data)) return;
    requests++;
    if (answer) socket.send(encodeStun(bindingSuccess(decodeStun(data), { address: rinfo.address, port: rinfo.port })), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, address, () => resolve()));
  return { endpoint: { address, port: socket.address().port }, requests: () => requests };
}

const fast = { retransmit: { rtoMs: 20, maxTransmissions: 2, lastWaitMultiplier: 2 } };

async function prober(checkRewrite: () => Promise<void> = async () => {}): Promise<Prober> {
  const p = await Prober.open({ wgPort: 51820, probePort: 0, stun: fast, checkRewrite });
  open.push(p);
  return p;
}

describe('reflexiveOfWgPort', () => {
  it('asks every server from the one socket and classifies the mapping when they span two addresses', async () => {
    const a = await stunServer('127.0.0.1');
    const b = await stunServer('127.0.0.2');
    const p = await prober();
    const m = await p.reflexiveOfWgPort([a.endpoint, b.endpoint]);
    const self = { address: '127.0.0.1', port: p.probePort };
    expect(m.reflexive).toEqual(self);
    expect(m.probes.map((x) => [x.server, x.mapped])).toEqual([[a.endpoint, self], [b.endpoint, self]]);
    expect(m.behavior).toBe('endpoint-independent');
    expect(m.failed).toEqual([]);
    expect((await p.reflexiveOfWgPort([a.endpoint])).behavior).toBeUndefined();
  });

  it('reports a silent server and answers from the others; fails when none answers', async () => {
    const silent = await stunServer('127.0.0.1', false);
    const live = await stunServer('127.0.0.1');
    const p = await prober();
    const m = await p.reflexiveOfWgPort([silent.endpoint, live.endpoint]);
    expect(m.probes.map((x) => x.server)).toEqual([live.endpoint]);
    expect(m.failed).toHaveLength(1);
    expect(m.failed[0]!.server).toEqual(silent.endpoint);
    expect(m.failed[0]!.error).toBeInstanceOf(StunTimeoutError);
    await expect(p.reflexiveOfWgPort([silent.endpoint])).rejects.toBeInstanceOf(StunTimeoutError);
    await expect(p.reflexiveOfWgPort([])).rejects.toThrow(RangeError);
  });

  it('asks nothing when the rewrite check fails', async () => {
    const server = await stunServer('127.0.0.1');
    const p = await prober(async () => {
      throw new PortShareInactiveError('table gone');
    });
    await expect(p.reflexiveOfWgPort([server.endpoint])).rejects.toMatchObject({ code: 'PORT_SHARE_INACTIVE' });
    expect(server.requests()).toBe(0);
  });
});

/** A socket whose datagrams go on the wire a tick after send() with the TTL of that moment, as dgram's do. */
class WireSocket extends EventEmitter {
  ttl = 64;
  failNext = false;
  readonly wire: { text: string; ttl: number }[] = [];
  setTTL(ttl: number): number {
    this.ttl = ttl;
    return ttl;
  }
  send(data: Buffer, _port: number, _address: string, cb: (err: Error | null) => void): void {
    setImmediate(() => {
      if (this.failNext) {
        this.failNext = false;
        cb(new Error('EHOSTUNREACH'));
        return;
      }
      this.wire.push({ text: data.toString(), ttl: this.ttl });
      cb(null);
    });
  }
  address(): { port: number } {
    return { port: 40000 };
  }
  close(cb?: () => void): void {
    cb?.();
  }
}

describe('punch', () => {
  const to = { address: '203.0.113.9', port: 51820 };
  const punchText = PUNCH_PAYLOAD.toString();

  it('keeps its small TTL to itself while other sends are in flight', async () => {
    const wire = new WireSocket();
    const p = new Prober(wire as unknown as Socket, { wgPort: 51820, probePort: 40000 });
    await Promise.all([p.port.send(Buffer.from('stun-1'), to), p.punch(to, 2), p.port.send(Buffer.from('stun-2'), to)]);
    expect(wire.wire).toEqual([{ text: 'stun-1', ttl: 64 }, { text: punchText, ttl: 2 }, { text: 'stun-2', ttl: 64 }]);
    expect(wire.ttl).toBe(64);
  });

  it('is needed: the same sends without the queue put the STUN request on the wire with the punch\'s TTL', async () => {
    const wire = new WireSocket();
    const socket = wire as unknown as Socket;
    await Promise.all([udpPort(socket).send(Buffer.from('stun-1'), to), sendWithTtl(socket, PUNCH_PAYLOAD, to, 2)]);
    expect(wire.wire[0]).toEqual({ text: 'stun-1', ttl: 2 });
  });

  it('a failed send does not block the ones behind it; a TTL out of range is refused', async () => {
    const wire = new WireSocket();
    const p = new Prober(wire as unknown as Socket, { wgPort: 51820, probePort: 40000 });
    wire.failNext = true;
    const results = await Promise.allSettled([p.punch(to, 2), p.port.send(Buffer.from('after'), to)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(wire.wire).toEqual([{ text: 'after', ttl: 64 }]);
    await expect(p.punch(to, 0)).rejects.toThrow(RangeError);
    await expect(p.punch(to, 256)).rejects.toThrow(RangeError);
  });
});
