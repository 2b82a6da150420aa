// Taking down what a WireGuard test started: the processes it reads, the interfaces (and
// their wireguard-go), daemons it only knows by pid, then the control sockets, which a
// SIGKILLed wireguard-go leaves behind and which every namespace shares. Every step runs
// even when an earlier one failed, so one failure does not leak the rest; the first
// failure is thrown at the end.
import type { ChildProcess } from 'node:child_process';
import { unlink } from 'node:fs/promises';
import type { WireguardBackend } from '../../node-agent/wireguard/backend.js';
import { uapiAnswers, uapiSocketPath } from '../../node-agent/wireguard/uapi.js';
import { isRunning } from '../../lib/pid.js';
import { waitFor } from './sh.js';

export interface WireguardLeftovers {
  children: readonly ChildProcess[];
  backends: readonly WireguardBackend[];
  daemonPids: Iterable<number>;
  /** How daemons known by pid are asked to go. */
  signal: NodeJS.Signals;
  ifnames: readonly string[];
  /** Runs once the daemons are gone, before the sockets are checked (e.g. namespaces). */
  afterDaemons?: (attempt: Attempt) => Promise<void>;
}

export type Attempt = (f: () => Promise<unknown>) => Promise<void>;

export async function teardownWireguard(l: WireguardLeftovers): Promise<void> {
  const errors: unknown[] = [];
  const attempt: Attempt = async (f) => {
    try {
      await f();
    } catch (err) {
      errors.push(err);
    }
  };
  for (const c of l.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const b of l.backends) await attempt(() => b.destroy());
  for (const pid of l.daemonPids) {
    if (isRunning(pid)) process.kill(pid, l.signal);
    await attempt(() => waitFor(`wireguard-go ${pid} to exit`, () => !isRunning(pid), 10_000));
  }
  await l.afterDaemons?.(attempt);
  for (const ifname of l.ifnames) {
    await attempt(() => waitFor(`${uapiSocketPath(ifname)} to stop answering`, async () => !(await uapiAnswers(ifname)), 10_000));
    await unlink(uapiSocketPath(ifname)).catch(() => undefined);
  }
  if (errors.length > 0) throw errors[0];
}
