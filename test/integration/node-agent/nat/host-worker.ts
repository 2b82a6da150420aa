// Runs inside an emulated host (see NsWorker in test/helpers/natlab.ts): UDP sockets, the
// STUN client and the TURN client, driven by the integration tests over IPC. Payloads are
// text; datagrams that are neither STUN nor ChannelData land in the socket's inbox, the
// way the agent's shared socket will tell its traffic apart.
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { probeMapping, stunBinding, type BindingProbe, type MappingReport } from '../../../../node-agent/nat/stun-client.js';
import { isStun } from '../../../../node-agent/nat/stun.js';
import type { RetransmitPolicy } from '../../../../node-agent/nat/stun-transaction.js';
import { TurnClient } from '../../../../node-agent/nat/turn-client.js';
import { isChannelData } from '../../../../node-agent/nat/turn.js';
import { sendWithTtl, udpPort } from '../../../../node-agent/nat/udp.js';
import { connectStream, type TlsSettings } from '../../../../node-agent/nat/stream-port.js';

export interface Datagram {
  from: Endpoint;
  text: string;
}

export interface Relayed {
  peer: Endpoint;
  text: string;
  via: 'indication' | 'channel';
}

interface Box<T> {
  items: T[];
  waiters: ((item: T) => void)[];
}

interface Bound {
  /** Absent for a TURN allocation over TCP or TLS (turnAllocateStream). */
  socket?: Socket;
  inbox: Box<Datagram>;
  raw: { from: Endpoint; hex: string }[];
  turn?: TurnClient;
  relayed: Box<Relayed>;
}

const sockets = new Map<number, Bound>();
const box = <T>(): Box<T> => ({ items: [], waiters: [] });

function put<T>(b: Box<T>, item: T): void {
  const waiter = b.waiters.shift();
  if (waiter) waiter(item);
  else b.items.push(item);
}

function take<T>(b: Box<T>, what: string, timeoutMs: number): Promise<T> {
  const ready = b.items.shift();
  if (ready !== undefined) return Promise.resolve(ready);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      b.waiters.splice(b.waiters.indexOf(waiter), 1);
      reject(new Error(`nothing received (${what}) within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = (item: T): void => {
      clearTimeout(timer);
      resolve(item);
    };
    b.waiters.push(waiter);
  });
}

function bound(port: number): Bound {
  const b = sockets.get(port);
  if (!b) throw new Error(`no socket on port ${port}`);
  return b;
}

function udp(port: number): Socket {
  const s = bound(port).socket;
  if (!s) throw new Error(`port ${port} is a TURN connection over TCP or TLS, not a UDP socket`);
  return s;
}

/** Binds a UDP socket on all addresses; returns its port, the handle for every other call. */
export async function open(port = 0): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, () => resolve());
  });
  const actual = socket.address().port;
  const b: Bound = { socket, inbox: box(), raw: [], relayed: box() };
  socket.on('message', (data, rinfo) => {
    const from = { address: rinfo.address, port: rinfo.port };
    b.raw.push({ from, hex: data.toString('hex') });
    if (!isStun(data) && !isChannelData(data)) put(b.inbox, { from, text: data.toString('utf8') });
  });
  sockets.set(actual, b);
  return actual;
}

export function stun(port: number, server: Endpoint, retransmit?: Partial<RetransmitPolicy>): Promise<BindingProbe> {
  return stunBinding(udpPort(udp(port)), server, retransmit ? { retransmit } : {});
}

export function probe(port: number, servers: Endpoint[]): Promise<MappingReport> {
  return probeMapping(udpPort(udp(port)), servers);
}

/** Sends `text`; with `ttl`, as a small-TTL probe that dies on the way. */
export async function send(port: number, to: Endpoint, text: string, ttl?: number): Promise<void> {
  const socket = udp(port);
  const data = Buffer.from(text);
  if (ttl === undefined) await udpPort(socket).send(data, to);
  else await sendWithTtl(socket, data, to, ttl);
}

export function next(port: number, timeoutMs = 5_000): Promise<Datagram> {
  return take(bound(port).inbox, `datagram on port ${port}`, timeoutMs);
}

/** Datagrams received and not yet taken by next(). */
export function inbox(port: number): Datagram[] {
  return [...bound(port).inbox.items];
}

/** Every datagram the socket got, as hex: how fixtures of coturn's bytes are captured. */
export function raw(port: number): { from: Endpoint; hex: string }[] {
  return bound(port).raw;
}

export async function turnAllocate(port: number, server: Endpoint, username: string, password: string): Promise<{ relayed: Endpoint; mapped?: Endpoint; ms: number }> {
  const b = bound(port);
  const started = performance.now();
  const turn = await TurnClient.allocate({ port: udpPort(udp(port)), server, username, password });
  return held(b, turn, performance.now() - started);
}

function held(b: Bound, turn: TurnClient, ms: number): { relayed: Endpoint; mapped?: Endpoint; ms: number } {
  b.turn = turn;
  b.relayed = box();
  turn.onData((d) => put(b.relayed, { peer: d.peer, text: d.data.toString('utf8'), via: d.via }));
  return { relayed: turn.relayed, ...(turn.mapped ? { mapped: turn.mapped } : {}), ms };
}

/**
 * A TURN allocation over TCP or TLS (RFC 8656 section 3.1, nat/stream-port.ts): returns the
 * connection's local port as `handle`, for the turn* calls as a UDP socket's port is.
 */
export async function turnAllocateStream(transport: 'tcp' | 'tls', server: Endpoint, username: string, password: string, tls?: TlsSettings,
  timeoutMs = 3000): Promise<{ handle: number; relayed: Endpoint; mapped?: Endpoint; ms: number }> {
  const started = performance.now();
  const port = await connectStream({ server, transport, tls, timeoutMs });
  try {
    const turn = await TurnClient.allocate({ port, server, username, password, retransmit: { rtoMs: 250, maxTransmissions: 4, lastWaitMultiplier: 4 } });
    const b: Bound = { inbox: box(), raw: [], relayed: box() };
    sockets.set(port.localPort, b);
    return { handle: port.localPort, ...held(b, turn, performance.now() - started) };
  } catch (err) {
    port.close();
    throw err;
  }
}

function turn(port: number): TurnClient {
  const t = bound(port).turn;
  if (!t) throw new Error(`no TURN allocation on port ${port}`);
  return t;
}

export function turnPermission(port: number, peers: Endpoint[]): Promise<void> {
  return turn(port).createPermission(peers);
}

export function turnBind(port: number, peer: Endpoint): Promise<number> {
  return turn(port).bindChannel(peer);
}

export function turnSend(port: number, peer: Endpoint, text: string, via: 'indication' | 'channel'): Promise<void> {
  const t = turn(port);
  return via === 'indication' ? t.sendIndication(peer, Buffer.from(text)) : t.send(peer, Buffer.from(text));
}

export function turnNext(port: number, timeoutMs = 5_000): Promise<Relayed> {
  return take(bound(port).relayed, `relayed data on port ${port}`, timeoutMs);
}

export function turnClose(port: number): Promise<void> {
  return turn(port).close();
}
