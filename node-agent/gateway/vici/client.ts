// A VICI client on charon's unix socket. VICI has no sequence numbers: a response belongs
// to the oldest unanswered request, so this client keeps exactly one exchange on the wire
// and queues the rest. Events can arrive at any time, also between a request and its
// response, and go to whoever subscribed (they keep flowing while a blocking `initiate`
// holds the wire; a caller that must not wait behind one opens a second connection, which
// charon allows). Nothing is retried or reconnected here: a lost or desynchronised
// connection fails every pending call with ViciConnectionError, resolves `closed`, and the
// caller (the gateway's reconciler) connects again and re-reads state.
import { connect, type Socket } from 'node:net';
import { WarrenError } from '../../../lib/errors.js';
import { decodePacket, encodePacket, PacketType, ViciFramer, ViciProtocolError, type ViciInput, type ViciMessage, type ViciPacket } from './codec.js';

/** The socket is gone (closed, refused, reset, or abandoned after a timeout). */
export class ViciConnectionError extends WarrenError {
  constructor(readonly socketPath: string, message: string, options?: { cause?: unknown }) {
    super('VICI_CONNECTION', `vici ${socketPath}: ${message}`, options);
  }
}

/** No answer in time. The connection is closed too: a late answer would pair with the next request. */
export class ViciTimeoutError extends WarrenError {
  constructor(readonly operation: string, readonly timeoutMs: number) {
    super('VICI_TIMEOUT', `vici ${operation}: no answer within ${timeoutMs} ms`);
  }
}

/** charon answered `success = no`; errmsg is its reason, verbatim. */
export class ViciCommandError extends WarrenError {
  constructor(readonly command: string, readonly errmsg: string, readonly response: ViciMessage) {
    super('VICI_COMMAND_FAILED', `vici ${command} failed: ${errmsg}`);
  }
}

/** charon has no handler for this command (CMD_UNKNOWN) or event (EVENT_UNKNOWN). */
export class ViciUnknownError extends WarrenError {
  constructor(readonly kind: 'command' | 'event', readonly operation: string) {
    super('VICI_UNKNOWN', `vici: charon knows no ${kind} ${JSON.stringify(operation)}`);
  }
}

/** Commands that answer with a stream of events before their response, and those events. */
export const STREAMED_EVENTS = {
  'list-sas': 'list-sa',
  'list-conns': 'list-conn',
  'list-certs': 'list-cert',
  'list-policies': 'list-policy',
  'list-authorities': 'list-authority',
} as const;
export type ListCommand = keyof typeof STREAMED_EVENTS;

export type ViciListener = (message: ViciMessage, event: string) => void;

export interface ViciClientOptions {
  /** Default for every call; `initiate` and `terminate` block in charon, give them more. */
  timeoutMs?: number;
}

export interface CallOptions {
  /** Longer than any `timeout` given to charon in the message, or the client gives up first. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

interface Subscription {
  readonly listener: ViciListener;
}

interface Awaiting {
  answers: 'command' | 'event';
  resolve: (packet: ViciPacket) => void;
  reject: (err: Error) => void;
}

export class ViciClient {
  private readonly framer = new ViciFramer();
  /** Tail of the job chain: each job owns the wire until it settles. */
  private queue: Promise<unknown> = Promise.resolve();
  private awaiting: Awaiting | undefined;
  /** Per event, the subscriptions; charon is registered while the set is non-empty. */
  private readonly subscriptions = new Map<string, Set<Subscription>>();
  private failure: ViciConnectionError | undefined;
  private markClosed!: (err: ViciConnectionError) => void;
  /** Resolves (never rejects) once the connection is unusable, with the reason. */
  readonly closed = new Promise<ViciConnectionError>((resolve) => (this.markClosed = resolve));

  private constructor(private readonly socket: Socket, readonly socketPath: string, private readonly timeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(new ViciConnectionError(socketPath, err.message, { cause: err })));
    socket.on('close', () => {
      const how = this.framer.midFrame ? 'charon closed the connection in the middle of a frame' : 'charon closed the connection';
      this.fail(new ViciConnectionError(socketPath, how));
    });
  }

  static connect(socketPath: string, options: ViciClientOptions = {}): Promise<ViciClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = connect({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ViciConnectionError(socketPath, `connect did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
      const refused = (err: Error): void => {
        clearTimeout(timer);
        reject(new ViciConnectionError(socketPath, `cannot connect: ${err.message}`, { cause: err }));
      };
      socket.once('error', refused);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', refused);
        resolve(new ViciClient(socket, socketPath, timeoutMs));
      });
    });
  }

  /** One command; throws ViciCommandError when charon answers `success = no`. */
  async request(command: string, message: ViciInput = {}, options: CallOptions = {}): Promise<ViciMessage> {
    const frame = encodePacket({ type: PacketType.CmdRequest, name: command, message });
    return this.enqueue(() => this.command(command, frame, options));
  }

  /**
   * A command that streams `event`s before its response (list-sas, or initiate with
   * control-log): registered for the event only while the command runs, as one job, so no
   * other command's events can mix in.
   */
  async stream(command: string, event: string, message: ViciInput = {}, options: CallOptions = {}): Promise<{ events: ViciMessage[]; response: ViciMessage }> {
    const frame = encodePacket({ type: PacketType.CmdRequest, name: command, message });
    return this.enqueue(async () => {
      const events: ViciMessage[] = [];
      const collector: Subscription = { listener: (m) => events.push(m) };
      await this.register(event, collector, options);
      let response: ViciMessage;
      try {
        response = await this.command(command, frame, options);
      } catch (err) {
        // The command's own failure explains more than a failed clean-up after it.
        await this.unregister(event, collector, options).catch(() => undefined);
        throw err;
      }
      await this.unregister(event, collector, options);
      return { events, response };
    });
  }

  /** The streamed list commands: the listed items, one message per event. */
  async list(command: ListCommand, message: ViciInput = {}, options: CallOptions = {}): Promise<ViciMessage[]> {
    return (await this.stream(command, STREAMED_EVENTS[command], message, options)).events;
  }

  /**
   * Delivers every `event` (ike-updown, child-updown, ike-rekey, log...) to `listener`
   * until the returned function is called. Resolves once charon confirmed, so a command
   * sent afterwards cannot raise an event the listener misses.
   */
  async subscribe(event: string, listener: ViciListener, options: CallOptions = {}): Promise<() => Promise<void>> {
    const subscription: Subscription = { listener };
    await this.enqueue(() => this.register(event, subscription, options));
    let done: Promise<void> | undefined;
    return () => (done ??= this.enqueue(() => this.unregister(event, subscription, options)));
  }

  /** Closes the socket; pending calls fail with ViciConnectionError. */
  close(): void {
    this.fail(new ViciConnectionError(this.socketPath, 'client closed'));
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.failure) throw this.failure;
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async command(command: string, frame: Buffer, options: CallOptions): Promise<ViciMessage> {
    const reply = await this.exchange(frame, 'command', command, options);
    if (reply.type === PacketType.CmdUnknown) throw new ViciUnknownError('command', command);
    if (reply.type !== PacketType.CmdResponse) throw new ViciProtocolError(`packet type ${reply.type} answered ${command}`);
    const { message } = reply;
    if (message.success === 'no') {
      const errmsg = typeof message.errmsg === 'string' ? message.errmsg : '(charon gave no errmsg)';
      throw new ViciCommandError(command, errmsg, message);
    }
    return message;
  }

  // The subscription is in place before EVENT_REGISTER goes out: charon registers, then
  // confirms, and an event raised in between reaches the socket before the confirmation.
  private async register(event: string, subscription: Subscription, options: CallOptions): Promise<void> {
    const existing = this.subscriptions.get(event);
    if (existing) {
      existing.add(subscription);
      return;
    }
    const set = new Set([subscription]);
    this.subscriptions.set(event, set);
    try {
      const reply = await this.exchange(encodePacket({ type: PacketType.EventRegister, name: event }), 'event', `register ${event}`, options);
      if (reply.type === PacketType.EventUnknown) throw new ViciUnknownError('event', event);
    } catch (err) {
      if (this.subscriptions.get(event) === set) this.subscriptions.delete(event);
      throw err;
    }
  }

  private async unregister(event: string, subscription: Subscription, options: CallOptions): Promise<void> {
    const set = this.subscriptions.get(event);
    if (!set?.delete(subscription) || set.size > 0) return;
    this.subscriptions.delete(event);
    if (this.failure) return;
    const reply = await this.exchange(encodePacket({ type: PacketType.EventUnregister, name: event }), 'event', `unregister ${event}`, options);
    if (reply.type === PacketType.EventUnknown) throw new ViciUnknownError('event', event);
  }

  /** Writes one frame and waits for the packet that answers it. Only ever one at a time. */
  private exchange(frame: Buffer, answers: Awaiting['answers'], operation: string, options: CallOptions): Promise<ViciPacket> {
    if (this.failure) return Promise.reject(this.failure);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const timeout = new ViciTimeoutError(operation, timeoutMs);
        this.awaiting = undefined;
        reject(timeout);
        this.fail(new ViciConnectionError(this.socketPath, `abandoned: ${timeout.message}`, { cause: timeout }));
      }, timeoutMs);
      const settle = <A extends unknown[]>(f: (...a: A) => void) => (...a: A): void => {
        clearTimeout(timer);
        this.awaiting = undefined;
        f(...a);
      };
      this.awaiting = { answers, resolve: settle(resolve), reject: settle(reject) };
      this.socket.write(frame);
    });
  }

  private receive(chunk: Buffer): void {
    let packets: ViciPacket[];
    try {
      packets = this.framer.push(chunk).map(decodePacket);
    } catch (err) {
      this.fail(new ViciConnectionError(this.socketPath, `unreadable data from charon: ${(err as Error).message}`, { cause: err }));
      return;
    }
    for (const packet of packets) {
      if (this.failure) return;
      this.dispatch(packet);
    }
  }

  private dispatch(packet: ViciPacket): void {
    if (packet.type === PacketType.Event) {
      for (const s of [...(this.subscriptions.get(packet.name) ?? [])]) {
        try {
          s.listener(packet.message, packet.name);
        } catch (err) {
          // A listener's bug must not desynchronise the wire; it still surfaces as an
          // uncaught exception, as an EventEmitter listener's would.
          process.nextTick(() => {
            throw err;
          });
        }
      }
      return;
    }
    const answers = packet.type === PacketType.CmdResponse || packet.type === PacketType.CmdUnknown ? 'command'
      : packet.type === PacketType.EventConfirm || packet.type === PacketType.EventUnknown ? 'event' : undefined;
    const waiting = this.awaiting;
    if (!waiting || answers !== waiting.answers) {
      const why = !waiting ? 'nothing was asked' : `a ${waiting.answers} answer was expected`;
      this.fail(new ViciConnectionError(this.socketPath, `charon sent packet type ${packet.type} when ${why}`));
      return;
    }
    waiting.resolve(packet);
  }

  private fail(err: ViciConnectionError): void {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    this.awaiting?.reject(err);
    this.subscriptions.clear();
    this.markClosed(err);
  }
}
