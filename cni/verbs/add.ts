// ADD: IPAM, veth, OVS port, pod addresses and routes, bridge gateway, masquerade.
// Independent steps run side by side; every acquired resource registers its undo first.
import { netnsExists, inNetns } from '../../lib/netns.js';
import { ipBatch } from '../../lib/ip.js';
import { deleteLink, linkNames } from '../../lib/links.js';
import { nftApply } from '../../lib/nft.js';
import { vsctl } from '../../lib/ovs.js';
import { ensureSysctl } from '../../lib/sysctl.js';
import { CommandError } from '../../lib/errors.js';
import { detectDatapath, effectiveMtu, ipamCall, type Context } from '../context.js';
import { CniCode, CniError } from '../errors.js';
import { ipamAdd, ipamDel } from '../ipam.js';
import { hostVethName, podMac } from '../naming.js';
import {
  bridgeAddressCommands, gateways, masqueradeScript, ovsAttachCommands, ovsDetachCommands,
  podConfigCommands, podRoutes, vethCreateCommands, type Attachment,
} from '../plan.js';
import type { CniResult } from '../result.js';
import { Rollback } from '../rollback.js';

export function attachmentOf(ctx: Context): Attachment {
  const { env } = ctx;
  return {
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    hostVeth: hostVethName(env.containerId, env.ifname),
    podNamespace: env.args.K8S_POD_NAMESPACE,
    podName: env.args.K8S_POD_NAME,
  };
}

/** Settles every step before failing, so no step is still acquiring while we undo. */
async function allSettled(steps: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

async function createVeth(ctx: Context, a: Attachment, mtu: number): Promise<void> {
  try {
    await ipBatch(ctx.runner, vethCreateCommands(a, mtu));
  } catch (err) {
    // A host end left by an ADD that died before its rollback: names are per
    // attachment, so it can only be ours. Remove it and try once more.
    if (!(err instanceof CommandError) || !/File exists/.test(err.stderr)) throw err;
    ctx.logger.log('warn', 'removing stale host veth', { hostVeth: a.hostVeth });
    await deleteLink(ctx.runner, a.hostVeth);
    await ipBatch(ctx.runner, vethCreateCommands(a, mtu));
  }
}

export async function add(ctx: Context): Promise<CniResult> {
  const { config: cfg, runner, env } = ctx;
  if (!netnsExists(env.netns)) {
    throw new CniError(CniCode.UnknownContainer, `CNI_NETNS ${env.netns} does not exist`);
  }
  const a = attachmentOf(ctx);
  const mtu = await effectiveMtu(cfg, runner);
  const bridgeExists = linkNames().has(cfg.bridge);
  const datapath = detectDatapath();
  const pod = inNetns(runner, env.netns);
  const call = ipamCall(ctx);
  const rollback = new Rollback((what, err) => ctx.logger.log('error', `rollback of ${what} failed`, { error: String(err) }));

  try {
    let ipam: CniResult | undefined;
    await allSettled([
      ipamAdd(call).then((r) => {
        rollback.push('IPAM allocation', () => ipamDel(call));
        ipam = r;
      }),
      (async () => {
        rollback.push('veth', () => deleteLink(runner, a.hostVeth));
        await createVeth(ctx, a, mtu);
      })(),
    ]);
    const result = ipam!;
    const gws = gateways(result);
    const routes = podRoutes(result, gws, cfg.isGateway);

    rollback.push('OVS port', () => vsctl(runner, ctx.ovs, ovsDetachCommands(a.hostVeth)));
    await allSettled([
      vsctl(runner, ctx.ovs, ovsAttachCommands(cfg, a, bridgeExists, datapath, mtu)),
      ipBatch(pod, podConfigCommands(a.ifname, result, routes)),
      // Userspace OVS forwards veth frames whose checksum was left to offload, and TCP
      // then fails while ping works (TESTBED.md): have the pod's kernel fill it in.
      datapath === 'netdev' ? pod('ethtool', ['-K', a.ifname, 'tx', 'off']) : Promise.resolve(),
      // Node-wide, so only once the pod's own resources exist: a refused ADD changes nothing.
      nftApply(runner, masqueradeScript(cfg)),
    ]);
    if (cfg.isGateway) {
      for (const g of gws) ensureSysctl(g.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1');
      await ipBatch(runner, bridgeAddressCommands(cfg.bridge, gws));
    } else {
      await ipBatch(runner, [`link set ${cfg.bridge} up`]);
    }

    const first = result.ips[0]!;
    return {
      interfaces: [
        { name: cfg.bridge },
        { name: a.hostVeth },
        { name: a.ifname, mac: podMac(first.address.split('/')[0]!), mtu, sandbox: env.netns },
      ],
      ips: result.ips.map((ip) => ({ ...ip, interface: 2 })),
      routes,
      dns: Object.keys(result.dns).length > 0 ? result.dns : { ...(cfg.dns ?? {}) },
    };
  } catch (err) {
    await rollback.unwind();
    throw err;
  }
}
