// GC (spec 1.1.0): remove everything of this network that belongs to no attachment
// in cni.dev/valid-attachments: OVS ports (and their veths) found by external_ids, host
// veths without a port found by their alias, and IPAM allocations. host-local has no GC of its own, so its allocations are read
// from its data directory and released through its ordinary DEL.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_LOCAL_DATA_DIR } from '../../lib/cni-resident.js';
import { ipJson, type IpLink } from '../../lib/ip.js';
import { deleteLink } from '../../lib/links.js';
import { ovsdbRows, vsctl, type OvsdbTable } from '../../lib/ovs.js';
import { ipamCall, type Context } from '../context.js';
import { CniCode, CniError } from '../errors.js';
import { ipamDel } from '../ipam.js';
import { detachPort } from '../ovs-port.js';
import { hostVethName } from '../naming.js';
import { EXTERNAL_ID, vethAlias } from '../plan.js';


function key(containerId: string, ifname: string): string {
  return `${containerId}/${ifname}`;
}

export interface HostLocalAllocation {
  ip: string;
  containerId: string;
  ifname: string;
}

/** host-local writes one file per address holding "containerID\r\nifname" (older: the ID alone). */
export function readHostLocalAllocations(dir: string): HostLocalAllocation[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: HostLocalAllocation[] = [];
  for (const name of names) {
    if (name === 'lock' || name.startsWith('last_reserved_ip')) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const [containerId = '', ifname = 'eth0'] = text.split(/\r?\n/).map((s) => s.trim());
    if (containerId) out.push({ ip: name, containerId, ifname });
  }
  return out;
}

export interface GcReport {
  ports: string[];
  /** Host veths of this network without an OVS port (their ADD died before it). */
  veths: string[];
  allocations: string[];
}

export async function gc(ctx: Context): Promise<GcReport> {
  const { config: cfg, runner } = ctx;
  const validList = cfg.validAttachments;
  if (!validList) throw new CniError(CniCode.InvalidConfig, 'GC needs cni.dev/valid-attachments in the configuration');
  const valid = new Set(validList.map((v) => key(v.containerID, v.ifname)));
  const report: GcReport = { ports: [], veths: [], allocations: [] };

  const table = JSON.parse(await vsctl(runner, ctx.ovs, [
    ['--format=json', '--columns=name,external_ids', 'find', 'Interface', `external_ids:${EXTERNAL_ID.network}=${JSON.stringify(cfg.name)}`],
  ])) as OvsdbTable;
  for (const row of ovsdbRows(table) as { name: string; external_ids: Record<string, string> }[]) {
    const ids = row.external_ids;
    if (valid.has(key(ids[EXTERNAL_ID.containerId] ?? '', ids[EXTERNAL_ID.ifname] ?? ''))) continue;
    await detachPort(ctx, row.name);
    await deleteLink(runner, row.name);
    report.ports.push(row.name);
  }

  // A veth whose ADD was killed between creating it and plugging it in: no OVS row names
  // it, its alias does. Names are per attachment, so a valid one's is known.
  const keep = new Set(validList.map((v) => hostVethName(v.containerID, v.ifname)));
  const alias = vethAlias(cfg.name);
  for (const link of await ipJson<IpLink[]>(runner, ['link', 'show', 'type', 'veth'])) {
    if (link.ifalias !== alias || keep.has(link.ifname) || report.ports.includes(link.ifname)) continue;
    await deleteLink(runner, link.ifname);
    report.veths.push(link.ifname);
  }

  if (cfg.ipam.type === 'host-local') {
    const dataDir = typeof cfg.ipam.dataDir === 'string' ? cfg.ipam.dataDir : HOST_LOCAL_DATA_DIR;
    for (const alloc of readHostLocalAllocations(join(dataDir, cfg.name))) {
      if (valid.has(key(alloc.containerId, alloc.ifname))) continue;
      await ipamDel(ipamCall(ctx), { CNI_CONTAINERID: alloc.containerId, CNI_IFNAME: alloc.ifname, CNI_NETNS: '' });
      report.allocations.push(alloc.ip);
    }
  }
  ctx.logger.log('info', 'gc', { removedPorts: report.ports, removedVeths: report.veths, releasedAddresses: report.allocations });
  return report;
}
