// The pod MTU: the uplink's MTU minus the worst tunnel overhead Warren may add. Shared
// by configgen (which writes it into the conflist) and the node agent (which sets it
// on tunnels), so both sides always agree.
import { WarrenError } from './errors.js';
import { ipJson, type IpLink } from './ip.js';
import type { Runner } from './runner.js';

/**
 * WireGuard over IPv6: 40 (IPv6) + 8 (UDP) + 32 (WireGuard header and tag). Over IPv4
 * it is 60; the larger figure is used so that a path moving to IPv6 never fragments.
 */
export const WIREGUARD_OVERHEAD = 80;

/** IPv6's minimum link MTU: a pod MTU below it would break IPv6 inside pods. */
export const MIN_POD_MTU = 1280;

export class MtuError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MTU_UNKNOWN', message, options);
  }
}

/** Pure: the pod MTU for an uplink of `uplinkMtu` bytes. */
export function podMtu(uplinkMtu: number): number {
  if (!Number.isInteger(uplinkMtu) || uplinkMtu <= 0) throw new MtuError(`uplink MTU ${uplinkMtu} is not a positive whole number`);
  const mtu = uplinkMtu - WIREGUARD_OVERHEAD;
  if (mtu < MIN_POD_MTU) {
    throw new MtuError(`uplink MTU ${uplinkMtu} leaves ${mtu} bytes after WireGuard's ${WIREGUARD_OVERHEAD}, below IPv6's minimum of ${MIN_POD_MTU}`);
  }
  return mtu;
}

interface IpRouteJson {
  dst?: string;
  dev?: string;
  metric?: number;
}

/** Pure: the device of the preferred default route (lowest metric), IPv4 before IPv6. */
export function defaultRouteDevice(v4: readonly IpRouteJson[], v6: readonly IpRouteJson[]): string | undefined {
  for (const routes of [v4, v6]) {
    const best = routes.filter((r) => r.dst === 'default' && r.dev).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
    if (best) return best.dev;
  }
  return undefined;
}

/** The MTU of the interface carrying the default route, read with `ip -json`. */
export async function uplinkMtu(runner: Runner): Promise<{ device: string; mtu: number }> {
  const v4 = await ipJson<IpRouteJson[]>(runner, ['-4', 'route', 'show', 'default']);
  // A kernel without IPv6 answers the -6 query with an error: that is "no IPv6 route".
  const v6 = v4.length > 0 ? [] : await runner('ip', ['-json', '-6', 'route', 'show', 'default'], { allowFailure: true })
    .then((r) => (r.exitCode === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as IpRouteJson[]) : []));
  const device = defaultRouteDevice(v4, v6);
  if (!device) throw new MtuError('no default route: cannot tell the uplink MTU');
  const [link] = await ipJson<IpLink[]>(runner, ['link', 'show', 'dev', device]);
  if (!link || typeof link.mtu !== 'number') throw new MtuError(`ip link show dev ${device} gave no MTU`);
  return { device, mtu: link.mtu };
}
