// What the device looks like now, read from `wg show IF dump` and `ip -json`. The
// parsers are pure and tested on captured output; the reader only runs the commands.
import { WarrenError } from '../../lib/errors.js';
import { ipJson, type IpAddrLink } from '../../lib/ip.js';
import type { Runner } from '../../lib/runner.js';
import { readWgDump, type WgDump } from '../wireguard/dump.js';
import { WARREN_ROUTE_PROTOCOL, type RouteKind } from './plan.js';

export class OverlayStateError extends WarrenError {
  constructor(message: string) {
    super('OVERLAY_STATE_UNREADABLE', message);
  }
}

export interface ActualRoute {
  dst: string;
  kind: RouteKind | 'other';
  /** The kernel's route type (unicast, unreachable, blackhole...), needed to delete it. */
  type: string;
  dev: string | undefined;
}

export interface ActualOverlay {
  wg: WgDump;
  mtu: number;
  up: boolean;
  /** Global addresses as "address/prefix"; link-local ones belong to the kernel. */
  addresses: string[];
  /** Only routes carrying Warren's protocol number, wherever they point. */
  routes: ActualRoute[];
}

/** Pure: MTU, state and addresses from `ip -json addr show dev IF`. */
export function parseAddrShow(links: readonly IpAddrLink[]): Pick<ActualOverlay, 'mtu' | 'up' | 'addresses'> {
  const [link] = links;
  if (!link) throw new OverlayStateError('ip addr show returned no link');
  return {
    mtu: link.mtu,
    up: (link.flags ?? []).includes('UP'),
    addresses: link.addr_info.filter((a) => a.scope !== 'link' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`),
  };
}

interface RouteJson {
  type?: string;
  dst: string;
  dev?: string;
}

/** Pure: Warren's routes from `ip -json route show table main proto N` (a host route prints without its /32 or /128). */
export function parseRoutes(routes: readonly RouteJson[]): ActualRoute[] {
  return routes.map((r) => {
    const type = r.type ?? 'unicast';
    return {
      dst: r.dst.includes('/') || r.dst === 'default' ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`,
      kind: type === 'unicast' ? 'interface' : type === 'unreachable' ? 'unreachable' : 'other',
      type,
      dev: r.dev,
    };
  });
}

export async function readActualOverlay(runner: Runner, ifname: string): Promise<ActualOverlay> {
  const proto = String(WARREN_ROUTE_PROTOCOL);
  const [wg, links, v4, v6] = await Promise.all([
    readWgDump(runner, ifname),
    ipJson<IpAddrLink[]>(runner, ['addr', 'show', 'dev', ifname]),
    ipJson<RouteJson[]>(runner, ['-4', 'route', 'show', 'table', 'main', 'proto', proto]),
    // A kernel without IPv6 refuses the -6 query: it then has no IPv6 routes.
    runner('ip', ['-json', '-6', 'route', 'show', 'table', 'main', 'proto', proto], { allowFailure: true })
      .then((r) => (r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as RouteJson[]) : [])),
  ]);
  return { wg, ...parseAddrShow(links), routes: parseRoutes([...v4, ...v6]) };
}
