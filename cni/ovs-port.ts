// The pod's OVS port, through OVSDB directly (one round trip), and ovs-vsctl where it
// does more than we want to write again: creating the bridge.
import { OvsdbError } from '../lib/ovsdb/client.js';
import { attachPortOps, detachPortOps, removeBridgeOps, selectBridgeOps, selectPortOps, type Value } from '../lib/ovsdb/ops.js';
import { vsctl } from '../lib/ovs.js';
import type { Context, OvsdbTransactor } from './context.js';
import { externalIds, ovsAttachCommands, type Attachment, type Datapath } from './plan.js';

async function withClient<T>(ctx: Context, fn: (c: OvsdbTransactor) => Promise<T>): Promise<T> {
  const session = await ctx.ovsdb(ctx.ovsdbAddress, (ctx.ovs.timeoutSeconds ?? 10) * 1000);
  try {
    return await fn(session.client);
  } finally {
    session.release();
  }
}

export async function attachPort(ctx: Context, a: Attachment, bridgeExists: boolean, datapath: Datapath, mtu: number): Promise<void> {
  const cfg = ctx.config;
  if (!bridgeExists) {
    await vsctl(ctx.runner, ctx.ovs, ovsAttachCommands(cfg, a, false, datapath, mtu));
    return;
  }
  const ops = attachPortOps({ bridge: cfg.bridge, name: a.hostVeth, externalIds: externalIds(cfg.name, a), bridgeMtu: mtu });
  await withClient(ctx, async (c) => {
    try {
      await c.transactAndWait(ops);
    } catch (err) {
      // A port of this name exists: left by an ADD that died before its rollback. Its
      // veth was made anew, and ovs-vswitchd keeps the old device open as long as the
      // row lives, so the row goes first (its own transaction) and comes back fresh.
      if (!(err instanceof OvsdbError) || !/constraint violation/.test(err.message)) throw err;
      ctx.logger.log('warn', 'replacing a stale OVS port', { port: a.hostVeth });
      await removePort(c, a.hostVeth, true);
      await c.transactAndWait(ops);
    }
  });
}

/** `wait`: until ovs-vswitchd has closed the device (needed before re-adding the same name). */
async function removePort(c: OvsdbTransactor, name: string, wait: boolean): Promise<void> {
  const [found] = await c.transact(selectPortOps(name));
  const uuid = found?.rows?.[0]?._uuid as ['uuid', string] | undefined;
  if (!uuid) return;
  if (wait) await c.transactAndWait(detachPortOps(uuid[1]));
  else await c.transact(detachPortOps(uuid[1]));
}

/** Removes the port from whichever bridge holds it; a port already gone is removed. */
export async function detachPort(ctx: Context, name: string): Promise<void> {
  await withClient(ctx, (c) => removePort(c, name, false));
}

/** Whether OVSDB has a bridge of this name: the kernel's link list cannot tell one from any other device. */
export async function isOvsBridge(ctx: Context, name: string): Promise<boolean> {
  const [found] = await withClient(ctx, (c) => c.transact(selectBridgeOps(name)));
  return (found?.rows?.length ?? 0) > 0;
}

/**
 * Undoes the bridge a failed ADD made, unless a concurrent ADD has plugged a port into it:
 * then it has more than its own internal port, or gets one before the removal commits.
 */
export async function removeBridgeIfUnused(ctx: Context, name: string): Promise<void> {
  await withClient(ctx, async (c) => {
    const [found] = await c.transact(selectBridgeOps(name));
    const row = found?.rows?.[0] as { _uuid: ['uuid', string]; ports: Value } | undefined;
    if (!row) return;
    // OVSDB writes a one-element set as the bare element.
    if (Array.isArray(row.ports) && row.ports[0] === 'set' && (row.ports[1] as unknown[]).length > 1) return;
    try {
      await c.transactAndWait(removeBridgeOps(row._uuid[1], row.ports));
    } catch (err) {
      if (!(err instanceof OvsdbError) || !/transaction failed: wait /.test(err.message)) throw err;
    }
  });
}
