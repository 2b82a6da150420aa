// Executor for iproute2: several changes in one `ip -batch` process, reads as `ip -json`.
import type { Runner } from './runner.js';

/** Runs the commands (each an `ip` argument line) in one process; stops at the first failure. */
export async function ipBatch(runner: Runner, commands: readonly string[]): Promise<void> {
  if (commands.length === 0) return;
  await runner('ip', ['-batch', '-'], { input: commands.join('\n') + '\n' });
}

export async function ipJson<T = unknown>(runner: Runner, args: readonly string[]): Promise<T> {
  const { stdout } = await runner('ip', ['-json', ...args]);
  const text = stdout.trim();
  return (text ? JSON.parse(text) : []) as T;
}

export interface IpLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  operstate?: string;
  flags?: string[];
  address?: string;
  ifalias?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

export interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface IpAddrLink extends IpLink {
  addr_info: IpAddrInfo[];
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
}

/** `ip link` answers "does not exist" / "Cannot find device" when the link is gone. */
export function isLinkMissing(stderr: string): boolean {
  return /does not exist|Cannot find device|No such device/i.test(stderr);
}
