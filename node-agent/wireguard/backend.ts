// Which WireGuard implementation carries the node's tunnel. Both give an interface that
// `wg` and `ip` drive the same way, so the contract is only about the device's life:
// make it exist (adopting what is already there), and take it away.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Runner } from '../../lib/runner.js';
import { InterfaceConflictError } from './errors.js';
import { KernelBackend } from './kernel-backend.js';
import type { Launcher } from './launch.js';
import { readExistingLink, type ExistingLink } from './link-kind.js';
import { WireguardGoBackend } from './wireguard-go-backend.js';

export type BackendKind = 'kernel' | 'wireguard-go';

/** What ensureInterface found: an interface kept as it was, made anew, or revived after its daemon died. */
export type EnsureAction = 'adopted' | 'created' | 'restarted';

export interface WireguardBackend {
  readonly kind: BackendKind;
  readonly ifname: string;
  /** Idempotent: a healthy interface is left alone, so calling it on every reconcile is free. */
  ensureInterface(): Promise<EnsureAction>;
  /** Whether something serves the device now (cheap: polled every second); false means ensureInterface has work to do. */
  serving(): Promise<boolean>;
  /** Idempotent: an interface already gone counts as destroyed. */
  destroy(): Promise<void>;
}

export interface BackendOptions {
  ifname: string;
  /** Runs `ip` inside the node's network namespace. */
  runner: Runner;
  /** The namespace wireguard-go must be started in; the agent's own when undefined. */
  netnsPath?: string;
  prefer?: 'auto' | BackendKind;
  /** Where wireguard-go writes its output. */
  logPath?: string;
  launcher?: Launcher;
  /** Whether the wireguard module is loaded (injected for tests). */
  kernelModuleLoaded?: () => boolean;
}

export interface BackendFacts {
  existing: ExistingLink;
  kernelModuleLoaded: boolean;
  prefer: 'auto' | BackendKind;
}

/** Pure: the implementation to use, or 'probe-kernel' when only trying `ip link add` can tell. */
export function chooseBackend(f: BackendFacts, ifname: string): BackendKind | 'probe-kernel' {
  if (f.existing === 'other') throw new InterfaceConflictError(`${ifname} exists and is not a WireGuard interface`);
  if (f.existing === 'wireguard') return 'kernel';
  if (f.existing === 'tun') return 'wireguard-go';
  if (f.prefer !== 'auto') return f.prefer;
  // Loading the module on demand happens inside `ip link add`, so an absent
  // /sys/module/wireguard does not yet mean "no kernel WireGuard".
  return f.kernelModuleLoaded ? 'kernel' : 'probe-kernel';
}

export async function openBackend(o: BackendOptions): Promise<WireguardBackend> {
  const facts: BackendFacts = {
    existing: await readExistingLink(o.runner, o.ifname),
    kernelModuleLoaded: (o.kernelModuleLoaded ?? (() => existsSync('/sys/module/wireguard')))(),
    prefer: o.prefer ?? 'auto',
  };
  let kind = chooseBackend(facts, o.ifname);
  if (kind === 'probe-kernel') kind = (await kernelCanCreate(o.runner)) ? 'kernel' : 'wireguard-go';
  if (kind === 'kernel') return new KernelBackend(o.ifname, o.runner);
  return new WireguardGoBackend({
    ifname: o.ifname,
    runner: o.runner,
    netnsPath: o.netnsPath,
    logPath: o.logPath ?? `/run/warren/wireguard-go-${o.ifname}.log`,
    launcher: o.launcher,
  });
}

// A throwaway name: the probe must not leave anything under the real one.
async function kernelCanCreate(runner: Runner): Promise<boolean> {
  const probe = `wgprobe${randomBytes(3).toString('hex')}`;
  const r = await runner('ip', ['link', 'add', probe, 'type', 'wireguard'], { allowFailure: true });
  if (r.exitCode !== 0) return false;
  await runner('ip', ['link', 'del', probe]);
  return true;
}
