// Facts about the node's links read from /proc, no process needed. /proc/net follows
// the reading process's network namespace; /sys/class/net follows whoever mounted
// /sys, which is wrong under `nsenter --net` (emulated nodes, podman): never use it.
import { readFileSync } from 'node:fs';
import { CommandError } from './errors.js';
import { ipJson, isLinkMissing, type IpLink } from './ip.js';
import type { Runner } from './runner.js';

/** Names of every link in this network namespace, from /proc/net/dev. */
export function linkNames(): Set<string> {
  try {
    const lines = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2);
    return new Set(lines.map((l) => l.split(':')[0]!.trim()).filter(Boolean));
  } catch {
    return new Set();
  }
}

/** The interface carrying the IPv4 default route, from /proc/net/route (a stable kernel ABI). */
export function defaultRouteInterface(): string | undefined {
  try {
    const lines = readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
      if (dest === '00000000' && mask === '00000000') return iface;
    }
  } catch {
    // no IPv4 routing table in this namespace
  }
  return undefined;
}

export async function linkMtus(runner: Runner): Promise<Map<string, number>> {
  const links = await ipJson<IpLink[]>(runner, ['link', 'show']);
  return new Map(links.map((l) => [l.ifname, l.mtu]));
}

/** Deletes a link; one already gone counts as deleted. */
export async function deleteLink(runner: Runner, name: string): Promise<void> {
  const r = await runner('ip', ['link', 'del', name], { allowFailure: true });
  if (r.exitCode !== 0 && !isLinkMissing(r.stderr)) {
    throw new CommandError(`ip link del ${name}`, r.exitCode, r.stderr);
  }
}
