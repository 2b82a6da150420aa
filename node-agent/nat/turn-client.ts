// A TURN client (RFC 8656) over a UDP socket: allocates a relay with long-term credentials,
// keeps allocation, permissions and channels refreshed on the injected clock, relays data
// both ways and deallocates on close. Decisions live in turn.ts and refreshDelayMs.
import { StunErrorResponse, StunIntegrityError, TurnStateError } from './errors.js';
import { SOFTWARE, TURN_CHANNEL_LIFETIME_SEC, TURN_CHANNEL_MAX, TURN_CHANNEL_MIN, TURN_PERMISSION_LIFETIME_SEC, TURN_REFRESH_MARGIN_SEC } from './knobs.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from './stun-address.js';
import { longTermKey } from './stun-integrity.js';
import { transact, type TransactionOptions } from './stun-transaction.js';
import { decodeStun, getErrorCode, getText, hasValidIntegrity, isStun, newTransactionId, StunAttr, textAttr, type DecodedStun, type StunMessage } from './stun.js';
import { systemTimers, type TimerHandle, type Timers } from './timers.js';
import {
  allocateRequest, channelBindRequest, createPermissionRequest, decodeChannelData, encodeChannelData, encodeRequest, getLifetime,
  isChannelData, parseAllocateSuccess, parsePeerData, refreshRequest, sendIndication, TurnMethod, type Credentials,
} from './turn.js';
import type { UdpPort } from './udp.js';

export interface TurnClientOptions extends TransactionOptions {
  port: UdpPort;
  server: Endpoint;
  username: string;
  password: string;
  /** Asked for in Allocate and each refresh; the server's default (600 s) when absent. */
  lifetimeSec?: number;
  software?: string;
}

/** An allocation as a successor process resumes it. */
export interface TurnSnapshot {
  relayed: Endpoint;
  channels: { channel: number; peer: Endpoint }[];
}

export interface TurnData {
  peer: Endpoint;
  data: Buffer;
  via: 'indication' | 'channel';
}

const METHOD_NAMES: Record<number, string> = { 0x003: 'Allocate', 0x004: 'Refresh', 0x008: 'CreatePermission', 0x009: 'ChannelBind' };
const UNAUTHENTICATED = 401;
const ALLOCATION_MISMATCH = 437;
const STALE_NONCE = 438;
/** RFC 8656 section 7.2: what a server grants when the client asks for nothing else. */
const DEFAULT_LIFETIME_SEC = 600;

/** Pure: refresh a margin before expiry, but never later than half the lifetime. */
export function refreshDelayMs(lifetimeSec: number): number {
  return Math.max(lifetimeSec / 2, lifetimeSec - TURN_REFRESH_MARGIN_SEC) * 1000;
}

const peerKey = (p: Endpoint): string => formatEndpoint(p);

export class TurnClient {
  // Set once by allocate.
  readonly relayed: Endpoint;
  readonly mapped: Endpoint | undefined;
  private readonly timers: Timers;
  private readonly unsubscribe: () => void;
  // Changed by requests and timers.
  private credentials: Credentials;
  private lifetimeSec: number;
  private closing = false;
  private closed = false;
  private readonly permissions = new Map<string, Endpoint>();
  private readonly channels = new Map<number, Endpoint>();
  private readonly channelOf = new Map<string, number>();
  private readonly refreshTimers = new Map<'allocation' | 'permissions' | 'channels', TimerHandle>();
  private readonly dataListeners = new Set<(d: TurnData) => void>();
  private readonly errorListeners = new Set<(e: unknown) => void>();

  private constructor(private readonly options: TurnClientOptions, credentials: Credentials, allocation: { relayed: Endpoint; mapped?: Endpoint; lifetimeSec: number }) {
    this.timers = options.timers ?? systemTimers;
    this.credentials = credentials;
    this.relayed = allocation.relayed;
    this.mapped = allocation.mapped;
    this.lifetimeSec = allocation.lifetimeSec;
    this.unsubscribe = options.port.onMessage((data, from) => this.receive(data, from));
    this.schedule('allocation', refreshDelayMs(this.lifetimeSec), () => this.refresh());
  }

  /** Section 7.1 with the 401 challenge of RFC 8489 section 9.2: ask, learn REALM and NONCE, ask again signed. */
  static async allocate(options: TurnClientOptions): Promise<TurnClient> {
    const credentials = await challenge(options, allocateRequest(newTransactionId(), options.lifetimeSec), 'Allocate');
    const { response, credentials: current } = await signedRequest(options, credentials, (id) => allocateRequest(id, options.lifetimeSec));
    return new TurnClient(options, current, parseAllocateSuccess(response));
  }

  /**
   * Takes over the allocation a previous process left on the same local port (the server
   * knows an allocation by its 5-tuple, not by who holds the socket): a signed Refresh
   * proves it still exists, and the channels it had keep their numbers, so peers that
   * send through them notice nothing. A 437 (no allocation for this 5-tuple) is thrown.
   */
  static async resume(options: TurnClientOptions, saved: TurnSnapshot): Promise<TurnClient> {
    const lifetimeSec = options.lifetimeSec ?? DEFAULT_LIFETIME_SEC;
    const credentials = await challenge(options, refreshRequest(newTransactionId(), lifetimeSec), 'Refresh');
    const { response, credentials: current } = await signedRequest(options, credentials, (id) => refreshRequest(id, lifetimeSec));
    const client = new TurnClient(options, current, { relayed: saved.relayed, lifetimeSec: getLifetime(response) ?? lifetimeSec });
    for (const { channel, peer } of saved.channels) {
      client.channels.set(channel, peer);
      client.channelOf.set(peerKey(peer), channel);
      client.permissions.set(peer.address, peer);
    }
    // Their remaining lifetimes are unknown: bind them again now (the same number for the
    // same peer is a refresh, RFC 8656 section 12), then on the usual schedule.
    if (saved.channels.length) await client.refreshChannels();
    return client;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onData(listener: (d: TurnData) => void): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /** Failures of background refreshes; the traversal engine decides whether to reallocate. */
  onError(listener: (e: unknown) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Section 9: lets the peers' IP addresses send to the relay; kept refreshed until close. */
  async createPermission(peers: readonly Endpoint[]): Promise<void> {
    await this.request((id) => createPermissionRequest(id, peers));
    for (const p of peers) this.permissions.set(p.address, p);
    if (!this.refreshTimers.has('permissions')) this.schedule('permissions', refreshDelayMs(TURN_PERMISSION_LIFETIME_SEC), () => this.refreshPermissions());
  }

  /** Section 12: binds (or returns the bound) channel to `peer`; also installs its permission. */
  async bindChannel(peer: Endpoint): Promise<number> {
    const bound = this.channelOf.get(peerKey(peer));
    if (bound !== undefined) return bound;
    const channel = TURN_CHANNEL_MIN + this.channels.size;
    if (channel > TURN_CHANNEL_MAX) throw new TurnStateError('all 4096 channel numbers are bound');
    this.channels.set(channel, peer);
    try {
      await this.request((id) => channelBindRequest(id, channel, peer));
    } catch (err) {
      this.channels.delete(channel);
      throw err;
    }
    this.channelOf.set(peerKey(peer), channel);
    if (!this.refreshTimers.has('channels')) this.schedule('channels', refreshDelayMs(TURN_CHANNEL_LIFETIME_SEC), () => this.refreshChannels());
    return channel;
  }

  /** Through the peer's channel when one is bound (4 bytes of overhead), else a Send indication (36+). */
  async send(peer: Endpoint, data: Buffer): Promise<void> {
    const channel = this.channelOf.get(peerKey(peer));
    return channel === undefined ? this.sendIndication(peer, data) : this.sendChannelData(channel, data);
  }

  async sendIndication(peer: Endpoint, data: Buffer): Promise<void> {
    this.assertOpen();
    await this.options.port.send(encodeRequest(sendIndication(newTransactionId(), peer, data)), this.options.server);
  }

  async sendChannelData(channel: number, data: Buffer): Promise<void> {
    this.assertOpen();
    if (!this.channels.has(channel)) throw new TurnStateError(`channel 0x${channel.toString(16)} is not bound`);
    await this.options.port.send(encodeChannelData(channel, data), this.options.server);
  }

  /** Section 7.2: returns the lifetime granted and schedules the next refresh from it. */
  async refresh(lifetimeSec = this.options.lifetimeSec ?? this.lifetimeSec): Promise<number> {
    const response = await this.request((id) => refreshRequest(id, lifetimeSec));
    this.lifetimeSec = getLifetime(response) ?? lifetimeSec;
    this.schedule('allocation', refreshDelayMs(this.lifetimeSec), () => this.refresh());
    return this.lifetimeSec;
  }

  /** Deallocates (Refresh with LIFETIME 0, section 7.2). An allocation already gone (437) counts as closed. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopTimers();
    try {
      await this.request((id) => refreshRequest(id, 0));
    } catch (err) {
      if (!(err instanceof StunErrorResponse && err.errorCode === ALLOCATION_MISMATCH)) throw err;
    } finally {
      this.closed = true;
      this.unsubscribe();
    }
  }

  /**
   * Lets go of the allocation without deallocating it: the next process on the same local
   * port resumes it (see resume) from what snapshot() returned. Unrefreshed, the server
   * frees it when its lifetime runs out.
   */
  detach(): TurnSnapshot {
    const snapshot = this.snapshot();
    this.closing = true;
    this.stopTimers();
    this.closed = true;
    this.unsubscribe();
    return snapshot;
  }

  /** What a successor needs to resume this allocation. */
  snapshot(): TurnSnapshot {
    return { relayed: this.relayed, channels: [...this.channels].map(([channel, peer]) => ({ channel, peer })) };
  }

  private async request(build: (transactionId: Buffer) => StunMessage): Promise<DecodedStun> {
    this.assertOpen();
    const { response, credentials } = await signedRequest(this.options, this.credentials, build);
    this.credentials = credentials;
    return response;
  }

  private refreshPermissions(): Promise<void> {
    return this.createPermission([...this.permissions.values()]).then(() => this.schedule('permissions', refreshDelayMs(TURN_PERMISSION_LIFETIME_SEC), () => this.refreshPermissions()));
  }

  private async refreshChannels(): Promise<void> {
    for (const [channel, peer] of this.channels) await this.request((id) => channelBindRequest(id, channel, peer));
    this.schedule('channels', refreshDelayMs(TURN_CHANNEL_LIFETIME_SEC), () => this.refreshChannels());
  }

  private schedule(which: 'allocation' | 'permissions' | 'channels', delayMs: number, job: () => Promise<unknown>): void {
    if (this.closing) return; // a refresh that was in flight when close() began must not re-arm
    this.timers.clearTimeout(this.refreshTimers.get(which));
    this.refreshTimers.set(which, this.timers.setTimeout(() => {
      job().catch((err: unknown) => {
        for (const l of this.errorListeners) l(err);
      });
    }, delayMs));
  }

  private stopTimers(): void {
    for (const handle of this.refreshTimers.values()) this.timers.clearTimeout(handle);
    this.refreshTimers.clear();
  }

  private receive(data: Buffer, from: Endpoint): void {
    if (this.closed || !sameEndpoint(from, this.options.server)) return;
    let received: TurnData | undefined;
    try {
      received = this.relayedData(data);
    } catch {
      return; // malformed: dropped like a lost datagram, never thrown into the socket's event
    }
    if (received) for (const l of this.dataListeners) l(received);
  }

  /** What a datagram from the server carries from a peer, if anything (responses are the transactions'). */
  private relayedData(data: Buffer): TurnData | undefined {
    if (isChannelData(data)) {
      const frame = decodeChannelData(data);
      const peer = this.channels.get(frame.channel);
      return peer ? { peer, data: frame.data, via: 'channel' } : undefined;
    }
    if (!isStun(data)) return undefined;
    const msg = decodeStun(data);
    return msg.method === TurnMethod.Data && msg.cls === 'indication' ? { ...parsePeerData(msg), via: 'indication' } : undefined;
  }

  private assertOpen(): void {
    if (this.closed) throw new TurnStateError(`TURN allocation ${formatEndpoint(this.relayed)} is closed`);
  }
}

/** The first, unsigned request of RFC 8489 section 9.2: its 401 carries the REALM and NONCE to sign with. */
async function challenge(options: TurnClientOptions, unsigned: StunMessage, method: string): Promise<Credentials> {
  const server = formatEndpoint(options.server);
  const first = await transact(options.port, options.server, encodeRequest(unsigned), options);
  const code = getErrorCode(first.response);
  const realm = getText(first.response, StunAttr.Realm);
  const nonce = getText(first.response, StunAttr.Nonce);
  if (first.response.cls === 'error' && code?.code !== UNAUTHENTICATED) {
    throw new StunErrorResponse(server, code?.code ?? 0, code?.reason ?? 'no ERROR-CODE', method);
  }
  if (first.response.cls !== 'error' || realm === undefined || nonce === undefined) {
    // A server that answers without the challenge cannot sign its answers for us to check.
    throw new StunIntegrityError(`${server} answered ${method} without a 401 challenge carrying REALM and NONCE`);
  }
  return { username: options.username, realm, nonce, key: longTermKey(options.username, realm, options.password) };
}

/**
 * One signed request; a 438 Stale Nonce is answered once with the new NONCE (RFC 8489
 * section 9.2.5). Success responses must carry valid MESSAGE-INTEGRITY.
 */
async function signedRequest(options: TurnClientOptions, initial: Credentials, build: (transactionId: Buffer) => StunMessage): Promise<{ response: DecodedStun; credentials: Credentials }> {
  let credentials = initial;
  for (let attempt = 0; ; attempt++) {
    const msg = build(newTransactionId());
    const software = { ...msg, attributes: [...msg.attributes, textAttr(StunAttr.Software, options.software ?? SOFTWARE)] };
    const { response } = await transact(options.port, options.server, encodeRequest(software, credentials), options);
    const method = METHOD_NAMES[msg.method] ?? `method 0x${msg.method.toString(16)}`;
    if (response.cls === 'success') {
      if (!hasValidIntegrity(response, credentials.key)) throw new StunIntegrityError(`${method} response from ${formatEndpoint(options.server)} fails MESSAGE-INTEGRITY`);
      return { response, credentials };
    }
    const error = getErrorCode(response);
    const nonce = getText(response, StunAttr.Nonce);
    if (error?.code === STALE_NONCE && nonce !== undefined && attempt === 0) {
      const realm = getText(response, StunAttr.Realm) ?? credentials.realm;
      credentials = { ...credentials, nonce, realm, key: longTermKey(credentials.username, realm, options.password) };
      continue;
    }
    throw new StunErrorResponse(formatEndpoint(options.server), error?.code ?? 0, error?.reason ?? 'no ERROR-CODE', method);
  }
}
