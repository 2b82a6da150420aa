// The thin executor: turns changes into one `ip -batch` before `wg set`, one `wg set`,
// and one `ip -batch` after. Routes are added last so that nothing is routed into the
// tunnel before its peer exists, and after the link is up (the kernel refuses routes
// through a down link). The private key goes by file path: never on a command line.
import { ipBatch } from '../../lib/ip.js';
import type { Runner } from '../../lib/runner.js';
import type { ActualRoute } from './actual.js';
import type { OverlayChanges } from './diff.js';
import { WARREN_ROUTE_PROTOCOL, type DesiredOverlay, type OverlayRoute } from './plan.js';

export interface OverlayCommands {
  /** `ip -batch` lines run first: link, addresses, stale routes. */
  ipBefore: string[];
  /** Arguments of `wg`, or undefined when WireGuard needs nothing. */
  wg: string[] | undefined;
  /** `ip -batch` lines run last: new routes. */
  ipAfter: string[];
}

/** Pure: the commands for `changes`. */
export function overlayCommands(ifname: string, desired: DesiredOverlay, changes: OverlayChanges): OverlayCommands {
  const proto = `proto ${WARREN_ROUTE_PROTOCOL}`;
  const ipBefore: string[] = [];
  if (changes.mtu !== undefined) ipBefore.push(`link set dev ${ifname} mtu ${changes.mtu}`);
  if (changes.bringUp) ipBefore.push(`link set dev ${ifname} up`);
  // Removed before added: deleting a primary address would take same-subnet secondaries with it.
  for (const a of changes.removeAddresses) ipBefore.push(`addr del ${a} dev ${ifname}`);
  for (const a of changes.addAddresses) ipBefore.push(`addr replace ${a} dev ${ifname}`);
  for (const r of changes.removeRoutes) ipBefore.push(`route del ${routeSpec(r)} ${proto} table main`);

  const wg: string[] = [];
  if (changes.setPrivateKey) wg.push('private-key', desired.privateKeyPath);
  if (changes.listenPort !== undefined) wg.push('listen-port', String(changes.listenPort));
  for (const k of changes.removePeers) wg.push('peer', k, 'remove');
  for (const p of changes.setPeers) {
    wg.push('peer', p.publicKey);
    if (p.allowedIps) wg.push('allowed-ips', p.allowedIps.join(','));
    if (p.endpoint !== undefined) wg.push('endpoint', p.endpoint);
    if (p.keepaliveSeconds !== undefined) wg.push('persistent-keepalive', p.keepaliveSeconds === 0 ? 'off' : String(p.keepaliveSeconds));
  }

  const ipAfter = changes.addRoutes.map((r) => `route replace ${desiredRouteSpec(r, ifname)} ${proto} table main`);
  return { ipBefore, wg: wg.length > 0 ? ['set', ifname, ...wg] : undefined, ipAfter };
}

function routeSpec(r: ActualRoute): string {
  const type = r.type === 'unicast' ? '' : `${r.type} `;
  return `${type}${r.dst}${r.dev ? ` dev ${r.dev}` : ''}`;
}

function desiredRouteSpec(r: OverlayRoute, ifname: string): string {
  return r.kind === 'unreachable' ? `unreachable ${r.dst}` : `${r.dst} dev ${ifname}`;
}

export async function applyOverlay(runner: Runner, ifname: string, desired: DesiredOverlay, changes: OverlayChanges): Promise<void> {
  const c = overlayCommands(ifname, desired, changes);
  await ipBatch(runner, c.ipBefore);
  if (c.wg) await runner('wg', c.wg);
  await ipBatch(runner, c.ipAfter);
}
