// The overlay's ranges (other devices' OIPs, the hubs') routed into IPsec from the active
// gateway, with our OIP for that hub as the source: the hub accepts nothing else from a
// device (its side of the SA is 0.0.0.0/0 <-> OIP/32), and with kernel-libipsec the source
// is also what picks the hub's SA. The first hub in the configured order whose tunnel is up
// carries every range; when it goes down the next one does (the hubs route to each other).
import { ipJson } from '../../lib/ip.js';
import type { Runner } from '../../lib/runner.js';
import type { HubSaState, SaStates } from './sa-state.js';

/** Route protocol of the gateway's routes: not the overlay's 87, whose reconcile removes every 87 route it did not plan. */
export const GATEWAY_ROUTE_PROTOCOL = 88;

export interface GatewayRoute {
  dst: string;
  dev: string;
  src: string;
  gateway?: string;
}

/** Where traffic into IPsec leaves: libipsec's TUN device, or (kernel ESP) the way to the hub. */
export interface Egress {
  dev: string;
  gateway?: string;
}

/** Pure: the hub carrying the overlay now, in configured order. */
export function activeHub(states: SaStates, order: readonly string[]): HubSaState | undefined {
  return order.map((h) => states.get(h)).find((s) => s?.ike === 'established' && s.child === 'installed' && s.oip !== undefined);
}

/** Pure: the routes the node must have (none while no hub is up: traffic then fails fast instead of leaking out unprotected). */
export function desiredRoutes(states: SaStates, order: readonly string[], ranges: readonly string[], egress: Egress): GatewayRoute[] {
  const hub = activeHub(states, order);
  if (!hub) return [];
  return ranges.map((dst) => ({ dst, dev: egress.dev, src: hub.oip!, ...(egress.gateway ? { gateway: egress.gateway } : {}) }));
}

interface RouteJson {
  dst: string;
  dev?: string;
  prefsrc?: string;
  gateway?: string;
}

const key = (r: GatewayRoute): string => `${r.dst} ${r.dev} ${r.src} ${r.gateway ?? ''}`;
const withPrefix = (dst: string): string => (dst.includes('/') ? dst : `${dst}/32`);

/** Pure: what to add and remove to get from `actual` to `desired`. */
export function routeChanges(actual: readonly GatewayRoute[], desired: readonly GatewayRoute[]): { add: GatewayRoute[]; remove: GatewayRoute[] } {
  const want = new Set(desired.map(key));
  const have = new Set(actual.map(key));
  const desiredDst = new Set(desired.map((r) => r.dst));
  return {
    add: desired.filter((r) => !have.has(key(r))),
    // A route whose destination stays is replaced in place, not removed first: no gap.
    remove: actual.filter((r) => !want.has(key(r)) && !desiredDst.has(r.dst)),
  };
}

export async function readGatewayRoutes(runner: Runner): Promise<GatewayRoute[]> {
  const routes = await ipJson<RouteJson[]>(runner, ['-4', 'route', 'show', 'table', 'main', 'proto', String(GATEWAY_ROUTE_PROTOCOL)]);
  return routes.map((r) => ({ dst: withPrefix(r.dst), dev: r.dev ?? '', src: r.prefsrc ?? '', ...(r.gateway ? { gateway: r.gateway } : {}) }));
}

/** Converges the node's gateway routes on `desired`; repeated calls change nothing. */
export async function reconcileGatewayRoutes(runner: Runner, desired: readonly GatewayRoute[]): Promise<{ added: number; removed: number }> {
  const { add, remove } = routeChanges(await readGatewayRoutes(runner), desired);
  const proto = ['proto', String(GATEWAY_ROUTE_PROTOCOL)];
  for (const r of add) {
    await runner('ip', ['route', 'replace', r.dst, ...(r.gateway ? ['via', r.gateway] : []), 'dev', r.dev, 'src', r.src, ...proto]);
  }
  for (const r of remove) await runner('ip', ['route', 'del', r.dst, ...proto], { allowFailure: true });
  return { added: add.length, removed: remove.length };
}

interface RuleJson {
  priority: number;
  table?: string;
}

/** Removes the policy rules that send traffic to charon's table (charon.ts says why); none left is the converged state. */
export async function removeCharonRules(runner: Runner, table: number): Promise<number> {
  const rules = await ipJson<RuleJson[]>(runner, ['-4', 'rule', 'show']);
  const ours = rules.filter((r) => r.table === String(table));
  for (const r of ours) await runner('ip', ['-4', 'rule', 'del', 'priority', String(r.priority), 'table', String(table)], { allowFailure: true });
  return ours.length;
}
