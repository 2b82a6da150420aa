// What every verb works with: the parsed environment and config, the process runner,
// the OVS target and the logger. Built once in dispatch, injected everywhere.
import { existsSync } from 'node:fs';
import { defaultRouteInterface, linkMtus } from '../lib/links.js';
import type { OvsTarget } from '../lib/ovs.js';
import { OvsdbClient } from '../lib/ovsdb/client.js';
import type { Runner } from '../lib/runner.js';
import type { WarrenConfig } from './config.js';
import type { CniEnv } from './env.js';
import type { IpamCall } from './ipam.js';
import type { Logger } from './log.js';
import type { Datapath } from './plan.js';
import type { RecentSteps } from './recent-steps.js';

export interface Context {
  env: CniEnv;
  config: WarrenConfig;
  runner: Runner;
  logger: Logger;
  ovs: OvsTarget;
  /** Where the OVSDB JSON-RPC client connects: the config's, else ovs-vsctl's default under the caller's OVS_RUNDIR. */
  ovsdbAddress: string;
  ovsdb: OvsdbConnect;
  cacheDir: string;
  /** IPAM plugins' supported versions, remembered for as long as the process lives (the resident server's). */
  ipamVersions?: Map<string, string[]>;
  /** Node-wide steps found in place a moment ago (the resident server's); none: every step is checked. */
  recentSteps?: RecentSteps;
}

/** What a verb transacts through: one client's transactions, on a connection it does not own. */
export type OvsdbTransactor = Pick<OvsdbClient, 'transact' | 'transactAndWait'>;

export interface OvsdbSession {
  client: OvsdbTransactor;
  /** Done with it: the standalone path closes its connection, the resident server keeps its own. */
  release(): void;
}

export type OvsdbConnect = (address: string, timeoutMs: number) => Promise<OvsdbSession>;

/** One connection per use, closed after: a process that lives for one verb. */
export const connectPerUse: OvsdbConnect = async (address, timeoutMs) => {
  const client = await OvsdbClient.connect(address, timeoutMs);
  return { client, release: () => client.close() };
};

export const CACHE_DIR = '/run/warren/cni';

// The kernel datapath needs the openvswitch module; without it OVS runs in userspace.
export function detectDatapath(): Datapath {
  return existsSync('/sys/module/openvswitch') ? 'system' : 'netdev';
}

/** MTU when the config names none: the bridge's if it exists, else the uplink's, else 1500. */
export async function effectiveMtu(cfg: WarrenConfig, runner: Runner): Promise<number> {
  if (cfg.mtu) return cfg.mtu;
  const mtus = await linkMtus(runner);
  const uplink = defaultRouteInterface();
  return mtus.get(cfg.bridge) ?? (uplink ? mtus.get(uplink) : undefined) ?? 1500;
}

export function ipamCall(ctx: Context, env = ctx.env): IpamCall {
  return { runner: ctx.runner, env, config: ctx.config, cacheDir: ctx.cacheDir, versions: ctx.ipamVersions };
}
