// The resident server's promise to the executable: once the executable may have given up
// on a request and started doing it itself, the server changes nothing more for it. Every
// command and every OVSDB transaction of a request passes its fence first.
import { WarrenError } from '../../lib/errors.js';
import type { Runner } from '../../lib/runner.js';
import type { OvsdbConnect } from '../context.js';

/** A request's work stopped by its fence. Never reaches the executable as a result: it gets `refused`. */
export class FencedError extends WarrenError {
  constructor(reason: string) {
    super('CNI_FENCED', `request fenced: ${reason}`);
  }
}

/**
 * Why the request must stop, or undefined while it may go on. `lastBeat`: wall-clock ms of
 * the last beat written to the executable (at first, when the executable sent the request).
 * Pure: a stopped process sees the gap as soon as it runs again, before anything else.
 */
export function fenceReason(now: number, lastBeat: number, fenceMs: number, closed: boolean): string | undefined {
  if (closed) return 'the executable closed the connection';
  const gap = now - lastBeat;
  if (gap > fenceMs) return `no beat for ${gap} ms (over ${fenceMs}): the executable may be working standalone`;
  return undefined;
}

export class Fence {
  private lastBeat: number;
  private closed = false;
  /** Latched: a fence that tripped stays shut, whatever beats follow. */
  private reason: string | undefined;
  /** Whether some command or transaction was stopped: the request's work is then incomplete. */
  blocked = false;

  constructor(private readonly now: () => number, private readonly fenceMs: number, sentAt: number) {
    this.lastBeat = sentAt;
  }

  get tripped(): string | undefined {
    return this.reason;
  }

  /** Whether a beat may be sent now; false (and tripped) when the last one is too old already. */
  beat(): boolean {
    if (this.open()) {
      this.lastBeat = this.now();
      return true;
    }
    return false;
  }

  close(): void {
    this.closed = true;
    this.open();
  }

  open(): boolean {
    this.reason ??= fenceReason(this.now(), this.lastBeat, this.fenceMs, this.closed);
    return this.reason === undefined;
  }

  check(): void {
    if (this.open()) return;
    this.blocked = true;
    throw new FencedError(this.reason!);
  }
}

// Async: a tripped fence is a rejected promise, as any failed command is, never a throw.
export function fencedRunner(runner: Runner, fence: Fence): Runner {
  return async (file, args, options) => {
    fence.check();
    return runner(file, args, options);
  };
}

export function fencedOvsdb(connect: OvsdbConnect, fence: Fence): OvsdbConnect {
  return async (address, timeoutMs) => {
    fence.check();
    const session = await connect(address, timeoutMs);
    const c = session.client;
    return {
      client: {
        transact: async (ops) => {
          fence.check();
          return c.transact(ops);
        },
        transactAndWait: async (ops, ms) => {
          fence.check();
          return c.transactAndWait(ops, ms);
        },
      },
      release: session.release,
    };
  };
}
