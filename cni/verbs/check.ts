// CHECK: the attachment still looks the way ADD left it (spec 1.1.0, CHECK):
// pod interface, its addresses and routes, the host veth on the right OVS port, and
// the IPAM's own CHECK.
import { splitInterfaceAddress } from '../../lib/cidr.js';
import { ipJson, type IpAddrLink, type IpRoute } from '../../lib/ip.js';
import { inNetns } from '../../lib/netns.js';
import { ovsdbRows, vsctl, type OvsdbTable } from '../../lib/ovs.js';
import { ipamCall, type Context } from '../context.js';
import { CniCode, CniError } from '../errors.js';
import { ipamCheck } from '../ipam.js';
import { EXTERNAL_ID } from '../plan.js';
import { normalizeResult, type CniRoute } from '../result.js';
import { attachmentOf, requireNetns } from './add.js';

function mismatch(what: string, details = ''): CniError {
  return new CniError(CniCode.CheckFailed, what, details);
}

function routeKey(dst: string, gw: string | undefined): string {
  const d = dst === '0.0.0.0/0' || dst === '::/0' ? 'default' : dst;
  return `${d} via ${gw ?? '-'}`;
}

export async function check(ctx: Context): Promise<void> {
  const { config: cfg, env, runner } = ctx;
  if (cfg.prevResult === undefined) throw new CniError(CniCode.InvalidConfig, 'CHECK needs prevResult in the configuration');
  const prev = normalizeResult(cfg.prevResult);
  requireNetns(env.netns);
  const a = attachmentOf(ctx);
  const pod = inNetns(runner, env.netns);

  const links = await ipJson<IpAddrLink[]>(pod, ['address', 'show']);
  const link = links.find((l) => l.ifname === a.ifname);
  if (!link) throw mismatch(`interface ${a.ifname} is missing in ${env.netns}`);
  if (cfg.mtu && link.mtu !== cfg.mtu) throw mismatch(`interface ${a.ifname} has MTU ${link.mtu}, config says ${cfg.mtu}`);
  const have = new Set(link.addr_info.map((i) => `${i.local}/${i.prefixlen}`));
  const podIndex = prev.interfaces.findIndex((i) => i.name === a.ifname && i.sandbox !== undefined);
  for (const ip of prev.ips) {
    if (ip.interface !== undefined && podIndex >= 0 && ip.interface !== podIndex) continue;
    const { address, prefix } = splitInterfaceAddress(ip.address);
    if (!have.has(`${address}/${prefix}`)) throw mismatch(`address ${ip.address} is missing on ${a.ifname}`, `present: ${[...have].join(', ')}`);
  }

  const families = new Set(prev.ips.map((ip) => splitInterfaceAddress(ip.address).family));
  const routes: IpRoute[] = [];
  for (const f of families) routes.push(...(await ipJson<IpRoute[]>(pod, [`-${f}`, 'route', 'show', 'dev', a.ifname])));
  const haveRoutes = new Set(routes.map((r) => routeKey(r.dst, r.gateway)));
  for (const r of prev.routes as CniRoute[]) {
    if (!haveRoutes.has(routeKey(r.dst, r.gw))) throw mismatch(`route ${routeKey(r.dst, r.gw)} is missing in the pod`, `present: ${[...haveRoutes].join(', ')}`);
  }

  const table = JSON.parse(await vsctl(runner, ctx.ovs, [
    ['--format=json', '--columns=name,external_ids', 'find', 'Interface', `name=${a.hostVeth}`],
  ])) as OvsdbTable;
  const row = ovsdbRows(table)[0] as { external_ids?: Record<string, string> } | undefined;
  if (!row) throw mismatch(`OVS port ${a.hostVeth} is missing`);
  const ids = row.external_ids ?? {};
  if (ids[EXTERNAL_ID.containerId] !== a.containerId || ids[EXTERNAL_ID.ifname] !== a.ifname) {
    throw mismatch(`OVS port ${a.hostVeth} belongs to another attachment`, JSON.stringify(ids));
  }
  const bridge = (await vsctl(runner, ctx.ovs, [['port-to-br', a.hostVeth]])).trim();
  if (bridge !== cfg.bridge) throw mismatch(`OVS port ${a.hostVeth} is on bridge ${bridge}, not ${cfg.bridge}`);

  await ipamCheck(ipamCall(ctx), cfg.prevResult);
}
