// What already carries the interface's name. Its kind decides the implementation:
// an interface in use is adopted, never replaced.
import { CommandError } from '../../lib/errors.js';
import { isLinkMissing } from '../../lib/ip.js';
import type { Runner } from '../../lib/runner.js';

export type ExistingLink = 'wireguard' | 'tun' | 'other' | undefined;

/** Pure: the kind of link `ip -d -json link show` describes. */
export function linkKind(link: { linkinfo?: { info_kind?: string } } | undefined): ExistingLink {
  if (!link) return undefined;
  const kind = link.linkinfo?.info_kind;
  return kind === 'wireguard' ? 'wireguard' : kind === 'tun' ? 'tun' : 'other';
}

export async function readExistingLink(runner: Runner, ifname: string): Promise<ExistingLink> {
  const r = await runner('ip', ['-d', '-json', 'link', 'show', 'dev', ifname], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (isLinkMissing(r.stderr)) return undefined;
    throw new CommandError(`ip -d -json link show dev ${ifname}`, r.exitCode, r.stderr);
  }
  const [link] = JSON.parse(r.stdout) as { linkinfo?: { info_kind?: string } }[];
  return linkKind(link);
}
