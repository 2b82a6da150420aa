// ADD: IPAM, veth, OVS port, pod addresses and routes, bridge gateway, masquerade.
// Independent steps run side by side; every acquired resource registers its undo first.
import { isNamespaceFile, netnsExists, inNetns } from '../../lib/netns.js';
import { ipBatch } from '../../lib/ip.js';
import { deleteLink, linkNames } from '../../lib/links.js';
import { nftApply, nftJsonIfExists } from '../../lib/nft.js';
import { ensureProcSys, ensureSysctl } from '../../lib/sysctl.js';
import { CommandError } from '../../lib/errors.js';
import { detectDatapath, effectiveMtu, ipamCall, type Context } from '../context.js';
import { CniCode, CniError } from '../errors.js';
import { ipamAdd, ipamDel, requirePlugin } from '../ipam.js';
import { hostVethName, podMac } from '../naming.js';
import { attachPort, detachPort, isOvsBridge, removeBridgeIfUnused } from '../ovs-port.js';
import {
  bridgeAddressCommands, gateways, masqueradeInSync, masqueradeScript, NFT_TABLE, nftChainName,
  podConfigCommands, podRoutes, vethCreateCommands, type Attachment, type Datapath, type Gateway,
} from '../plan.js';
import type { CniResult } from '../result.js';
import { allSettled, Rollback } from '../rollback.js';

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

async function createVeth(ctx: Context, a: Attachment, mtu: number): Promise<void> {
  try {
    await ipBatch(ctx.runner, vethCreateCommands(a, mtu, ctx.config.name));
  } catch (err) {
    // A host end left by an ADD that died before its rollback: names are per
    // attachment, so it can only be ours. Remove it and try once more.
    if (!(err instanceof CommandError) || !/File exists/.test(err.stderr)) throw err;
    ctx.logger.log('warn', 'removing stale host veth', { hostVeth: a.hostVeth });
    await deleteLink(ctx.runner, a.hostVeth);
    await ipBatch(ctx.runner, vethCreateCommands(a, mtu, ctx.config.name));
  }
}

/**
 * Addresses and routes in one process in the pod's netns. With the userspace datapath
 * the pod's TX checksum offload goes off first: OVS forwards veth frames whose checksum
 * was left to offload, and TCP then fails while ping works (TESTBED.md). One shell
 * instead of a second nsenter: under 50 concurrent ADDs on 2 cores, processes are the cost.
 */
async function configurePod(ctx: Context, a: Attachment, datapath: Datapath, commands: string[]): Promise<void> {
  const pod = inNetns(ctx.runner, a.netns);
  if (datapath === 'system') return ipBatch(pod, commands);
  await pod('sh', ['-c', 'ethtool -K "$1" tx off >/dev/null && exec ip -batch -', 'sh', a.ifname], { input: commands.join('\n') + '\n' });
}

/** The nft script that brings the bridge's masquerade chain in line with the config, if it is not. */
async function masqueradeChange(ctx: Context, key: string): Promise<string | undefined> {
  if (ctx.recentSteps?.fresh(key)) return undefined;
  const listed = await nftJsonIfExists(ctx.runner, ['list', 'chain', 'inet', NFT_TABLE, nftChainName(ctx.config.bridge)]);
  return masqueradeInSync(ctx.config, listed) ? undefined : masqueradeScript(ctx.config);
}

/** The bridge's node-wide state: up, with the gateway addresses when the node is the pods' gateway. */
async function configureBridge(ctx: Context, gws: Gateway[], bridgeExisted: boolean): Promise<void> {
  // A bridge made by this ADD has none of it yet, whatever was found before.
  const key = `bridge ${JSON.stringify([ctx.config.bridge, ctx.config.isGateway, gws])}`;
  if (bridgeExisted && ctx.recentSteps?.fresh(key)) return;
  await bridgeUpWithGateways(ctx, gws);
  ctx.recentSteps?.done(key);
}

async function bridgeUpWithGateways(ctx: Context, gws: Gateway[]): Promise<void> {
  if (!ctx.config.isGateway) return ipBatch(ctx.runner, [`link set ${ctx.config.bridge} up`]);
  for (const g of gws) ensureSysctl(g.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding', '1');
  await ipBatch(ctx.runner, bridgeAddressCommands(ctx.config.bridge, gws));
  // Pods send everything to the gateway, also to pods beside them (podConfigCommands), and
  // the node forwards it back out of the bridge: it must not tell them, by an ICMP redirect,
  // to go directly, or replies from Service backends would bypass kube-proxy's reverse NAT.
  // The kernel sends redirects if the `all` or the interface's setting says so: both off.
  if (gws.some((g) => g.family === 4)) {
    ensureSysctl('net.ipv4.conf.all.send_redirects', '0');
    ensureProcSys(`/proc/sys/net/ipv4/conf/${ctx.config.bridge}/send_redirects`, '0');
  }
}

/** No network namespace at CNI_NETNS: nothing there, or a file that is none (a stale mount point, a directory). */
export function requireNetns(netns: string): void {
  if (!netnsExists(netns)) throw new CniError(CniCode.UnknownContainer, `CNI_NETNS ${netns} does not exist`);
  if (!isNamespaceFile(netns)) throw new CniError(CniCode.UnknownContainer, `CNI_NETNS ${netns} is not a network namespace`);
}

export async function add(ctx: Context): Promise<CniResult> {
  const { config: cfg, runner, env } = ctx;
  requireNetns(env.netns);
  const a = attachmentOf(ctx);
  const mtu = await effectiveMtu(cfg, runner);
  const bridgeExists = linkNames().has(cfg.bridge);
  // A link of that name that OVS does not know (lo, the uplink) is no bridge to plug into:
  // refused before the node-wide steps below would give it the gateway address.
  if (bridgeExists && !(await isOvsBridge(ctx, cfg.bridge))) {
    throw new CniError(CniCode.InvalidConfig, `bridge ${JSON.stringify(cfg.bridge)} is an interface of the node but not an Open vSwitch bridge`);
  }
  const datapath = detectDatapath();
  const call = ipamCall(ctx);
  requirePlugin(call); // before anything changes: a missing IPAM is bad input
  const rollback = new Rollback((what, err) => ctx.logger.log('error', `rollback of ${what} failed`, { error: String(err) }));

  // A dependency graph, not phases: each step starts as soon as what it needs exists.
  // Every step registers its undo before acting, and all steps settle before an undo runs.
  const ipamP = ipamAdd(call).then((r) => {
    rollback.push('IPAM allocation', () => ipamDel(call));
    return r;
  });
  const vethP = (async () => {
    rollback.push('veth', () => deleteLink(runner, a.hostVeth));
    await createVeth(ctx, a, mtu);
  })();
  const ovsP = vethP.then(async () => {
    if (!bridgeExists) rollback.push('bridge', () => removeBridgeIfUnused(ctx, cfg.bridge));
    rollback.push('OVS port', () => detachPort(ctx, a.hostVeth));
    await attachPort(ctx, a, bridgeExists, datapath, mtu);
  });
  const routesP = ipamP.then((r) => podRoutes(r, gateways(r), cfg.isGateway));
  const podP = Promise.all([ipamP, routesP, vethP]).then(([r, routes]) => configurePod(ctx, a, datapath, podConfigCommands(a.ifname, r, routes, cfg.isGateway)));
  // A new bridge exists once OVS has made it; an existing one is configured at once.
  const bridgeP = Promise.all([ipamP, bridgeExists ? undefined : ovsP]).then(([r]) => configureBridge(ctx, gateways(r), bridgeExists));
  // Node-wide: read alongside, written (rarely: on a new node or a changed config) only once
  // the attachment stands, so that a failed ADD leaves the node's masquerading as it was.
  const nftKey = `masquerade ${masqueradeScript(cfg)}`;
  const nftP = masqueradeChange(ctx, nftKey);
  try {
    await allSettled([ipamP, vethP, ovsP, podP, bridgeP, nftP]);
    const script = await nftP;
    if (script) await nftApply(runner, script);
    ctx.recentSteps?.done(nftKey);
    const [result, routes] = await Promise.all([ipamP, routesP]);

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
