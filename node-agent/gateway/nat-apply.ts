// Runs the gateway NAT's plan (nat-plan.ts) on the node's nftables: only its own table,
// only when what is there differs, so the role may call it on every change of OIP and the
// agent on every reconcile. Rewriting an identical table would not cut connections (the
// NAT bindings live in conntrack) but it costs a transaction and zeroes the counters.
import { nftApply, nftJsonIfExists } from '../../lib/nft.js';
import type { Runner } from '../../lib/runner.js';
import { GATEWAY_NAT_TABLE, gatewayNatInSync, gatewayNatRemovalScript, gatewayNatScript, type GatewayNatInput } from './nat-plan.js';

export type GatewayNatAction = 'created' | 'replaced' | 'unchanged' | 'removed' | 'absent';

const readTable = (runner: Runner): Promise<unknown> => nftJsonIfExists(runner, ['list', 'table', 'ip', GATEWAY_NAT_TABLE]);

/** Idempotent: the table as planned for `input` (none while no hub is up); an input that fails validation touches nothing. */
export async function applyGatewayNat(runner: Runner, input: GatewayNatInput): Promise<GatewayNatAction> {
  const script = gatewayNatScript(input);
  const listed = await readTable(runner);
  if (script === undefined) {
    if (listed === undefined) return 'absent';
    await nftApply(runner, gatewayNatRemovalScript());
    return 'removed';
  }
  if (gatewayNatInSync(input, listed)) return 'unchanged';
  await nftApply(runner, script);
  return listed === undefined ? 'created' : 'replaced';
}

/** Idempotent: a table already gone counts as removed. */
export async function removeGatewayNat(runner: Runner): Promise<'removed' | 'absent'> {
  if ((await readTable(runner)) === undefined) return 'absent';
  await nftApply(runner, gatewayNatRemovalScript());
  return 'removed';
}
