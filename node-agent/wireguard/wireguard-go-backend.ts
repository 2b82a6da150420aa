// The userspace implementation: wireguard-go serving a TUN device. Warren creates the
// TUN itself, persistent, before starting wireguard-go on it. The link, its addresses
// and its routes then outlive the daemon: when wireguard-go dies, traffic for peers
// stays routed into a link without carrier and is dropped, instead of the routes
// vanishing and pod traffic leaking unencrypted out of the default route; a new
// wireguard-go attaches to the same link and only the WireGuard state is re-applied.
import { open } from 'node:fs/promises';
import { CommandError } from '../../lib/errors.js';
import { deleteLink } from '../../lib/links.js';
import type { Runner } from '../../lib/runner.js';
import type { EnsureAction, WireguardBackend } from './backend.js';
import { InterfaceConflictError, WireguardGoStartError, WireguardGoStopError } from './errors.js';
import { inNetnsCommand, launchDetached, type Exit, type Launched, type Launcher } from './launch.js';
import { readExistingLink, type ExistingLink } from './link-kind.js';
import { pollUntil } from '../../lib/poll.js';
import { isRunning } from '../../lib/pid.js';
import { LOG_TAIL_BYTES, POLL_INTERVAL_MS, WIREGUARD_GO_START_TIMEOUT_MS, WIREGUARD_GO_STOP_TIMEOUT_MS } from './tuning.js';
import { uapiAnswers, uapiSocketPath } from './uapi.js';

export type WireguardGoStep = 'adopt' | 'start' | 'create-and-start';

/** Pure: what to do given the link under the name and whether a wireguard-go answers for it. */
export function decideWireguardGo(existing: ExistingLink, daemonAnswers: boolean, ifname: string): WireguardGoStep {
  if (existing === 'tun') return daemonAnswers ? 'adopt' : 'start';
  if (existing !== undefined) throw new InterfaceConflictError(`${ifname} exists as a ${existing} link, not a TUN device wireguard-go can serve`);
  // The socket path is shared by all namespaces: a daemon answering while this
  // namespace has no such link serves another namespace's interface of the same name.
  if (daemonAnswers) throw new InterfaceConflictError(`${uapiSocketPath(ifname)} is served by a wireguard-go of another network namespace`);
  return 'create-and-start';
}

export interface WireguardGoOptions {
  ifname: string;
  runner: Runner;
  netnsPath: string | undefined;
  logPath: string;
  launcher: Launcher | undefined;
}

export class WireguardGoBackend implements WireguardBackend {
  readonly kind = 'wireguard-go';
  readonly ifname: string;
  private daemon: Launched | undefined;

  constructor(private readonly o: WireguardGoOptions) {
    this.ifname = o.ifname;
  }

  /** The wireguard-go this instance started, if any (an adopted one is not ours to know). */
  get pid(): number | undefined {
    return this.daemon?.pid;
  }

  async ensureInterface(): Promise<EnsureAction> {
    const existing = await readExistingLink(this.o.runner, this.ifname);
    const step = decideWireguardGo(existing, await uapiAnswers(this.ifname), this.ifname);
    if (step === 'adopt') return 'adopted';
    if (step === 'start') {
      await this.start();
      return 'restarted';
    }
    await this.o.runner('ip', ['tuntap', 'add', 'dev', this.ifname, 'mode', 'tun']);
    try {
      await this.start();
    } catch (err) {
      // Undo the TUN made for this attempt; the next pass starts from a clean name.
      await this.o.runner('ip', ['link', 'del', this.ifname], { allowFailure: true });
      throw err;
    }
    return 'created';
  }

  /** A live wireguard-go answers on its control socket; a crashed or killed one does not. */
  serving(): Promise<boolean> {
    return uapiAnswers(this.ifname);
  }

  async destroy(): Promise<void> {
    const daemon = this.daemon;
    if (daemon?.pid !== undefined && isRunning(daemon.pid)) {
      process.kill(daemon.pid, 'SIGTERM');
      await withTimeout(daemon.exited, WIREGUARD_GO_STOP_TIMEOUT_MS);
    }
    this.daemon = undefined;
    await deleteLink(this.o.runner, this.ifname);
    // An adopted daemon is not ours to signal; it exits once its TUN is gone.
    if (!(await pollUntil(async () => !(await uapiAnswers(this.ifname)), WIREGUARD_GO_STOP_TIMEOUT_MS, 50))) {
      throw new WireguardGoStopError(`wireguard-go for ${this.ifname} still answers ${WIREGUARD_GO_STOP_TIMEOUT_MS} ms after its interface was deleted`);
    }
  }

  private async start(): Promise<void> {
    const [file, args] = inNetnsCommand(this.o.netnsPath, 'wireguard-go', ['-f', this.ifname]);
    const daemon = (this.o.launcher ?? launchDetached)(file, args, { logPath: this.o.logPath });
    this.daemon = daemon;
    let exit: Exit | undefined;
    void daemon.exited.then((e) => (exit = e));
    const up = await pollUntil(async () => exit !== undefined || (await uapiAnswers(this.ifname)), WIREGUARD_GO_START_TIMEOUT_MS, POLL_INTERVAL_MS);
    if (up && exit === undefined) return;
    if (exit === undefined && daemon.pid !== undefined) process.kill(daemon.pid, 'SIGKILL');
    const why = exit ? (exit.error ? `could not start: ${exit.error}` : `exited (${exit.signal ?? `status ${exit.code}`})`) : `did not open ${uapiSocketPath(this.ifname)} within ${WIREGUARD_GO_START_TIMEOUT_MS} ms`;
    throw new WireguardGoStartError(`wireguard-go for ${this.ifname} ${why}; its log ${this.o.logPath} ends with: ${await logTail(this.o.logPath)}`);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

async function logTail(path: string): Promise<string> {
  try {
    const f = await open(path, 'r');
    try {
      const { size } = await f.stat();
      const length = Math.min(size, LOG_TAIL_BYTES);
      const { buffer } = await f.read(Buffer.alloc(length), 0, length, size - length);
      return buffer.toString('utf8').trim() || '(empty)';
    } finally {
      await f.close();
    }
  } catch {
    return '(unreadable)';
  }
}
