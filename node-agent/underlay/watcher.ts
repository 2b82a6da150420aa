// The executor around view.ts: a long-lived `ip monitor address route link` (netlink
// events, as the kernel sends them) wakes it; it then reads the node's addresses and
// default routes as JSON, and tells onChange when the underlay moved. The monitor's own
// output is never parsed (view.ts says why): any output means "look again", a burst of
// events (an address replaced: a delete, route deletes, an add) is read once after
// SETTLE_MS. A monitor that dies is started again after RESTART_MS, and the node is read
// again then: events while it was down are lost, the state is not.
import { spawn } from 'node:child_process';
import { childEnv, type Runner } from '../../lib/runner.js';
import { ipJson, type IpAddrLink } from '../../lib/ip.js';
import { systemTimers, type TimerHandle, type Timers } from '../nat/timers.js';
import { underlayChange, underlayView, type IpDefaultRoute, type UnderlayChange, type UnderlayScope, type UnderlayView } from './view.js';

/** After the first event of a burst, wait this long for the rest before reading: one read per change, not one per netlink message. */
export const SETTLE_MS = 50;
/** A monitor that exited is started again after this long (it should never exit: iproute2 gone, killed by hand). */
export const RESTART_MS = 1000;

/** A running monitor: calls onOutput for any output, onExit once when it ends. */
export interface Monitor {
  stop(): void;
}
export type MonitorSpawner = (onOutput: () => void, onExit: (why: string) => void) => Monitor;

/** `ip monitor address route link` as a child of the agent, in the agent's network namespace. */
export const ipMonitor: MonitorSpawner = (onOutput, onExit) => {
  const child = spawn('ip', ['monitor', 'address', 'route', 'link'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv({}) });
  let stderr = '';
  let ended = false;
  const end = (why: string): void => {
    if (ended) return;
    ended = true;
    onExit(why);
  };
  child.stdout.on('data', () => onOutput());
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
  child.once('error', (err) => end(err.message));
  child.once('exit', (code, signal) => end(`ip monitor exited (${code ?? signal})${stderr ? `: ${stderr.trim()}` : ''}`));
  return { stop: () => { ended = true; child.kill('SIGTERM'); } };
};

/** Reads the node's underlay: `ip -json address show` and the IPv4 default routes of the main table. */
export function readUnderlay(runner: Runner, scope: UnderlayScope): () => Promise<UnderlayView> {
  return async () => {
    const [links, routes] = await Promise.all([
      ipJson<IpAddrLink[]>(runner, ['address', 'show']),
      ipJson<IpDefaultRoute[]>(runner, ['-4', 'route', 'show', 'default']),
    ]);
    return underlayView(links, routes, scope);
  };
}

export interface UnderlayWatcherOptions {
  read: () => Promise<UnderlayView>;
  /** The underlay moved: `before` and `after` differ in `change`. */
  onChange: (change: UnderlayChange, after: UnderlayView) => void;
  onError: (err: unknown) => void;
  monitor?: MonitorSpawner;
  timers?: Timers;
}

export class UnderlayWatcher {
  private readonly timers: Timers;
  private view: UnderlayView | undefined;
  private monitor: Monitor | undefined;
  private settleTimer: TimerHandle | undefined;
  private restartTimer: TimerHandle | undefined;
  /** The read under way, and whether an event came during it (read again after). */
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private stopped = false;

  constructor(private readonly o: UnderlayWatcherOptions) {
    this.timers = o.timers ?? systemTimers;
  }

  /** Reads the underlay as it is now (the baseline), then follows netlink. */
  async start(): Promise<void> {
    this.view = await this.o.read();
    this.startMonitor();
  }

  /** The underlay as last read. */
  current(): UnderlayView | undefined {
    return this.view;
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.timers.clearTimeout(this.settleTimer);
    this.timers.clearTimeout(this.restartTimer);
    this.monitor?.stop();
    this.monitor = undefined;
    return this.reading ?? Promise.resolve();
  }

  private startMonitor(): void {
    if (this.stopped) return;
    this.monitor = (this.o.monitor ?? ipMonitor)(() => this.wake(), (why) => {
      this.monitor = undefined;
      if (this.stopped) return;
      this.o.onError(new Error(`${why}: started again in ${RESTART_MS} ms`));
      this.restartTimer = this.timers.setTimeout(() => {
        this.startMonitor();
        this.wake(); // whatever changed while nobody listened
      }, RESTART_MS);
    });
  }

  private wake(): void {
    if (this.stopped || this.settleTimer !== undefined) return;
    this.settleTimer = this.timers.setTimeout(() => {
      this.settleTimer = undefined;
      this.readNow();
    }, SETTLE_MS);
  }

  private readNow(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = this.compare()
      .catch((err: unknown) => this.o.onError(err))
      .finally(() => {
        this.reading = undefined;
        if (this.readAgain && !this.stopped) {
          this.readAgain = false;
          this.readNow();
        }
      });
  }

  private async compare(): Promise<void> {
    const after = await this.o.read();
    if (this.stopped) return;
    const before = this.view;
    this.view = after;
    const change = before ? underlayChange(before, after) : undefined;
    if (change) this.o.onChange(change, after);
  }
}
