// The pod's OVS port, through OVSDB directly (one round trip) on the hot path, and
// ovs-vsctl where it does more than we want to write again: creating the bridge, and
// adopting a port left by an ADD that died.
import { OvsdbClient, OvsdbError, defaultOvsdbAddress } from '../lib/ovsdb/client.js';
import { attachPortOps, detachPortOps, selectPortOps } from '../lib/ovsdb/ops.js';
import { vsctl } from '../lib/ovs.js';
import type { Context } from './context.js';
import { externalIds, ovsAttachCommands, type Attachment, type Datapath } from './plan.js';

function address(ctx: Context): string {
  return ctx.ovs.db ?? defaultOvsdbAddress();
}

async function withClient<T>(ctx: Context, fn: (c: OvsdbClient) => Promise<T>): Promise<T> {
  const client = await OvsdbClient.connect(address(ctx), (ctx.ovs.timeoutSeconds ?? 10) * 1000);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export async function attachPort(ctx: Context, a: Attachment, bridgeExists: boolean, datapath: Datapath, mtu: number): Promise<void> {
  const cfg = ctx.config;
  if (!bridgeExists) {
    await vsctl(ctx.runner, ctx.ovs, ovsAttachCommands(cfg, a, false, datapath, mtu));
    return;
  }
  try {
    await withClient(ctx, (c) => c.transactAndWait(attachPortOps({ bridge: cfg.bridge, name: a.hostVeth, externalIds: externalIds(cfg.name, a), bridgeMtu: mtu })));
  } catch (err) {
    // A port of this name already exists (its ADD died before rollback): adopt it.
    if (!(err instanceof OvsdbError) || !/constraint violation/.test(err.message)) throw err;
    ctx.logger.log('warn', 'adopting existing OVS port', { port: a.hostVeth });
    await vsctl(ctx.runner, ctx.ovs, ovsAttachCommands(cfg, a, true, datapath, mtu));
  }
}

/** Removes the port from whichever bridge holds it; a port already gone is removed. */
export async function detachPort(ctx: Context, name: string): Promise<void> {
  await withClient(ctx, async (c) => {
    const [found] = await c.transact(selectPortOps(name));
    const uuid = found?.rows?.[0]?._uuid as ['uuid', string] | undefined;
    if (uuid) await c.transact(detachPortOps(uuid[1]));
  });
}
