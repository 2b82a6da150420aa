// A fake clock and a fake UDP port for the STUN/TURN clients: time moves only when a test
// says so, and a scripted responder stands in for the server.
import type { Endpoint } from '../../../../node-agent/nat/stun-address.js';
import type { Timers } from '../../../../node-agent/nat/timers.js';
import type { UdpPort } from '../../../../node-agent/nat/udp.js';

/** Lets every pending promise job run (setImmediate comes after the microtask queue drains). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

export class FakeTimers implements Timers {
  private t = 0;
  private seq = 0;
  private queue: { at: number; id: number; fn: () => void }[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.queue.push({ at: this.t + ms, id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.queue = this.queue.filter((e) => e.id !== handle);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Moves time forward by `ms`, running due timers in order and settling promises after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.queue.filter((e) => e.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.queue = this.queue.filter((e) => e !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

export interface Reply {
  data: Buffer;
  from: Endpoint;
}

export class FakePort implements UdpPort {
  readonly sent: { data: Buffer; to: Endpoint; at: number }[] = [];
  private readonly listeners = new Set<(data: Buffer, from: Endpoint) => void>();

  constructor(private readonly timers: Timers, private readonly responder: (data: Buffer, to: Endpoint) => Reply[] = () => []) {}

  async send(data: Buffer, to: Endpoint): Promise<void> {
    this.sent.push({ data, to, at: this.timers.now() });
    for (const reply of this.responder(data, to)) queueMicrotask(() => this.deliver(reply.data, reply.from));
  }

  deliver(data: Buffer, from: Endpoint): void {
    for (const l of this.listeners) l(data, from);
  }

  onMessage(listener: (data: Buffer, from: Endpoint) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
