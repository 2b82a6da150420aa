// What every verb works with: the parsed environment and config, the process runner,
// the OVS target and the logger. Built once in dispatch, injected everywhere.
import { existsSync } from 'node:fs';
import { defaultRouteInterface, linkMtus } from '../lib/links.js';
import type { OvsTarget } from '../lib/ovs.js';
import type { Runner } from '../lib/runner.js';
import type { WarrenConfig } from './config.js';
import type { CniEnv } from './env.js';
import type { IpamCall } from './ipam.js';
import type { Logger } from './log.js';
import type { Datapath } from './plan.js';

export interface Context {
  env: CniEnv;
  config: WarrenConfig;
  runner: Runner;
  logger: Logger;
  ovs: OvsTarget;
  cacheDir: string;
}

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
  return { runner: ctx.runner, env, config: ctx.config, cacheDir: ctx.cacheDir };
}
