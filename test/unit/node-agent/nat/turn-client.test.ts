import { describe, expect, it } from 'vitest';
import { StunErrorResponse, StunIntegrityError, TurnStateError } from '../../../../node-agent/nat/errors.js';
import { decodeStun, encodeStun, getText, isStun, newTransactionId, StunAttr } from '../../../../node-agent/nat/stun.js';
import { refreshDelayMs, TurnClient, type TurnData } from '../../../../node-agent/nat/turn-client.js';
import { dataIndication, decodeChannelData, encodeChannelData, getLifetime, isChannelData, parsePeerData, TurnMethod } from '../../../../node-agent/nat/turn.js';
import { FakePort, FakeTimers, type Reply } from './fake-net.js';
import { FakeTurnServer, MAPPED, RELAYED, SERVER } from './fake-turn-server.js';

const peer = { address: '198.51.100.9', port: 50123 };

async function setup(lifetimeSec?: number): Promise<{ timers: FakeTimers; server: FakeTurnServer; port: FakePort; client: TurnClient }> {
  const timers = new FakeTimers();
  const server = new FakeTurnServer();
  const port = new FakePort(timers, server.respond);
  const client = await TurnClient.allocate({ port, server: SERVER, username: 'u', password: 'p', timers, ...(lifetimeSec ? { lifetimeSec } : {}) });
  return { timers, server, port, client };
}

describe('refreshDelayMs', () => {
  it('refreshes a minute before expiry, or at half the lifetime when that is earlier', () => {
    expect(refreshDelayMs(600)).toBe(540_000);
    expect(refreshDelayMs(300)).toBe(240_000);
    expect(refreshDelayMs(60)).toBe(30_000);
  });
});

describe('TurnClient', () => {
  it('answers the 401 challenge with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY', async () => {
    const { server, client } = await setup();
    expect(server.methods()).toEqual([TurnMethod.Allocate, TurnMethod.Allocate]);
    const [first, second] = server.requests;
    expect(getText(first!, StunAttr.Username)).toBeUndefined();
    expect([getText(second!, StunAttr.Username), getText(second!, StunAttr.Realm), getText(second!, StunAttr.Nonce)]).toEqual(['u', 'r', 'nonce-1']);
    expect(client.relayed).toEqual(RELAYED);
    expect(client.mapped).toEqual(MAPPED);
  });

  it('rejects a success response whose MESSAGE-INTEGRITY does not match the password', async () => {
    const timers = new FakeTimers();
    const server = new FakeTurnServer();
    server.forgeIntegrity = true;
    const err = await TurnClient.allocate({ port: new FakePort(timers, server.respond), server: SERVER, username: 'u', password: 'p', timers }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StunIntegrityError);
  });

  it('reports a wrong password as the 401 it gets', async () => {
    const timers = new FakeTimers();
    const server = new FakeTurnServer();
    const err = await TurnClient.allocate({ port: new FakePort(timers, server.respond), server: SERVER, username: 'u', password: 'wrong', timers }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StunErrorResponse);
    expect(err).toMatchObject({ errorCode: 401, method: 'Allocate' });
  });

  it('retries once with the new nonce after 438 Stale Nonce', async () => {
    const { server, client } = await setup();
    server.staleNext = true;
    await client.createPermission([peer]);
    expect(server.methods().slice(2)).toEqual([TurnMethod.CreatePermission, TurnMethod.CreatePermission]);
    expect(getText(server.requests[3]!, StunAttr.Nonce)).toBe('nonce-2');
  });

  it('refreshes the allocation a minute before expiry on the injected clock, then from the granted lifetime', async () => {
    const { timers, server } = await setup(600);
    await timers.advance(539_999);
    expect(server.methods()).not.toContain(TurnMethod.Refresh);
    await timers.advance(1);
    expect(server.methods().filter((m) => m === TurnMethod.Refresh)).toHaveLength(1);
    expect(getLifetime(server.requests.at(-1)!)).toBe(600);
    await timers.advance(540_000);
    expect(server.methods().filter((m) => m === TurnMethod.Refresh)).toHaveLength(2);
  });

  it('keeps permissions (every 240 s) and channels (every 540 s) alive', async () => {
    const { timers, server, client } = await setup();
    await client.createPermission([peer]);
    await client.bindChannel({ address: '198.51.100.10', port: 7 });
    const count = (m: number): number => server.methods().filter((x) => x === m).length;
    await timers.advance(240_000);
    expect(count(TurnMethod.CreatePermission)).toBe(2);
    await timers.advance(300_000);
    expect([count(TurnMethod.CreatePermission), count(TurnMethod.ChannelBind)]).toEqual([3, 2]);
  });

  it('emits Data indications and ChannelData from the server, ignores other senders and unknown channels', async () => {
    const { port, client } = await setup();
    const got: TurnData[] = [];
    client.onData((d) => got.push(d));
    const channel = await client.bindChannel(peer);
    expect(channel).toBe(0x4000);
    expect(await client.bindChannel(peer)).toBe(0x4000);
    port.deliver(encodeStun(dataIndication(newTransactionId(), peer, Buffer.from('ind'))), SERVER);
    port.deliver(encodeChannelData(channel, Buffer.from('chan')), SERVER);
    port.deliver(encodeChannelData(0x4abc, Buffer.from('unbound')), SERVER);
    port.deliver(encodeChannelData(channel, Buffer.from('spoofed')), { address: '203.0.113.99', port: 3478 });
    expect(got).toEqual([{ peer, data: Buffer.from('ind'), via: 'indication' }, { peer, data: Buffer.from('chan'), via: 'channel' }]);
  });

  it('sends a Send indication until a channel is bound, ChannelData after', async () => {
    const { port, client } = await setup();
    await client.send(peer, Buffer.from('one'));
    const ind = decodeStun(port.sent.at(-1)!.data);
    expect(ind).toMatchObject({ method: TurnMethod.Send, cls: 'indication' });
    expect(parsePeerData(ind)).toEqual({ peer, data: Buffer.from('one') });
    const channel = await client.bindChannel(peer);
    await client.send(peer, Buffer.from('two'));
    const frame = port.sent.at(-1)!.data;
    expect(isStun(frame)).toBe(false);
    expect(isChannelData(frame)).toBe(true);
    expect(decodeChannelData(frame)).toEqual({ channel, data: Buffer.from('two') });
    await expect(client.sendChannelData(0x4fff, Buffer.alloc(1))).rejects.toBeInstanceOf(TurnStateError);
  });

  it('close deallocates with LIFETIME 0, stops every timer and refuses further use', async () => {
    const { timers, server, port, client } = await setup();
    await client.createPermission([peer]);
    await client.bindChannel({ address: '198.51.100.10', port: 7 });
    await client.close();
    const last = server.requests.at(-1)!;
    expect(last.method).toBe(TurnMethod.Refresh);
    expect(getLifetime(last)).toBe(0);
    expect(timers.pending).toBe(0);
    expect(port.listenerCount).toBe(0);
    expect(client.isClosed).toBe(true);
    await expect(client.send(peer, Buffer.alloc(1))).rejects.toBeInstanceOf(TurnStateError);
    await client.close(); // idempotent
    expect(server.requests.at(-1)).toBe(last);
  });

  it('detach keeps the allocation for a successor: no deallocation, every timer stopped, the channels in the snapshot', async () => {
    const { timers, server, port, client } = await setup();
    await client.bindChannel(peer);
    const before = server.requests.length;
    const snapshot = client.detach();
    expect(server.requests.length).toBe(before); // no Refresh with LIFETIME 0
    expect(server.allocated).toBe(true);
    expect(timers.pending).toBe(0);
    expect(port.listenerCount).toBe(0);
    expect(snapshot).toEqual({ relayed: RELAYED, channels: [{ channel: 0x4000, peer }] });
    await expect(client.send(peer, Buffer.alloc(1))).rejects.toBeInstanceOf(TurnStateError);
  });

  it('a successor resumes the allocation on the same 5-tuple: a signed Refresh, the same relay address, the channels bound again under their numbers', async () => {
    const { timers, server, client } = await setup();
    await client.bindChannel({ address: '198.51.100.10', port: 7 });
    await client.bindChannel(peer);
    const snapshot = client.detach();
    const port = new FakePort(timers, server.respond);
    const first = server.requests.length;
    const next = await TurnClient.resume({ port, server: SERVER, username: 'u', password: 'p', timers }, snapshot);
    expect(next.relayed).toEqual(RELAYED);
    expect(server.methods().slice(first)).toEqual([TurnMethod.Refresh, TurnMethod.Refresh, TurnMethod.ChannelBind, TurnMethod.ChannelBind]);
    expect(getText(server.requests[first]!, StunAttr.Username)).toBeUndefined(); // the challenge
    expect(getLifetime(server.requests[first + 1]!)).toBe(600); // a refresh, never a deallocation
    // Data through the channels reaches the successor as from the peer; it sends through them too.
    const got: TurnData[] = [];
    next.onData((d) => got.push(d));
    port.deliver(encodeChannelData(0x4001, Buffer.from('kept')), SERVER);
    expect(got).toEqual([{ peer, data: Buffer.from('kept'), via: 'channel' }]);
    await next.send(peer, Buffer.from('out'));
    expect(decodeChannelData(port.sent.at(-1)!.data)).toEqual({ channel: 0x4001, data: Buffer.from('out') });
    // A new peer gets the next free number, not one the predecessor had bound.
    expect(await next.bindChannel({ address: '198.51.100.11', port: 8 })).toBe(0x4002);
    expect(timers.pending).toBeGreaterThan(0);
  });

  it('resuming an allocation the server no longer has fails with its 437', async () => {
    const { timers, server, client } = await setup();
    const snapshot = client.detach();
    server.allocated = false;
    const err = await TurnClient.resume({ port: new FakePort(timers, server.respond), server: SERVER, username: 'u', password: 'p', timers }, snapshot).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StunErrorResponse);
    expect(err).toMatchObject({ errorCode: 437, method: 'Refresh' });
  });

  it('close counts an allocation already gone (437) as closed', async () => {
    const { server, client } = await setup();
    server.allocated = false;
    await expect(client.close()).resolves.toBeUndefined();
    expect(client.isClosed).toBe(true);
  });

  it('reports a failed background refresh through onError', async () => {
    const { timers, server, client } = await setup(600);
    const errors: unknown[] = [];
    client.onError((e) => errors.push(e));
    server.allocated = false; // the server lost the allocation
    await timers.advance(540_000);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'STUN_ERROR_RESPONSE', errorCode: 437 });
  });

  it('drops malformed datagrams from the server instead of throwing into the socket handler', async () => {
    const { port, client } = await setup();
    const got: TurnData[] = [];
    client.onData((d) => got.push(d));
    await client.bindChannel(peer);
    expect(() => port.deliver(encodeStun({ method: TurnMethod.Data, cls: 'indication', transactionId: newTransactionId(), attributes: [] }), SERVER)).not.toThrow();
    expect(() => port.deliver(Buffer.concat([encodeChannelData(0x4000, Buffer.from('x')), Buffer.alloc(8)]), SERVER)).not.toThrow();
    expect(got).toEqual([]);
  });

  it('a refresh still in flight when close begins does not re-arm its timer', async () => {
    const timers = new FakeTimers();
    const server = new FakeTurnServer();
    let held: Reply[] = [];
    const port = new FakePort(timers, (data, to) => {
      const replies = server.respond(data, to);
      const last = server.requests.at(-1);
      if (last?.method === TurnMethod.Refresh && getLifetime(last) !== 0 && held.length === 0) {
        held = replies;
        return [];
      }
      return replies;
    });
    const client = await TurnClient.allocate({ port, server: SERVER, username: 'u', password: 'p', timers, lifetimeSec: 600 });
    await timers.advance(540_000);
    expect(held).toHaveLength(1);
    const closing = client.close();
    for (const r of held) port.deliver(r.data, r.from);
    await closing;
    await timers.advance(0);
    expect(timers.pending).toBe(0);
  });
});

