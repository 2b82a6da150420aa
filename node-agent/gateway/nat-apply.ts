// Runs the gateway NAT's plan (nat-plan.ts) on the node's nftables: only its own table,
// only when what is there differs, so the role may call it on every change of OIP and the
// agent on every reconcile. Rewriting an identical table would not cut connections (the
// NAT bindings live in conntrack) but it costs a transaction and zeroes the counters.
import ipaddr from 'ipaddr.js';
import { CommandError } from '../../lib/errors.js';
import { nftApply, nftJsonIfExists } from '../../lib/nft.js';
import { describeCommand, type Runner } from '../../lib/runner.js';
import { GATEWAY_NAT_TABLE, GatewayNatInputError, gatewayNatInSync, gatewayNatRemovalScript, gatewayNatScript, type GatewayNatInput } from './nat-plan.js';

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

/**
 * Forgets the connections whose answers come back to `oip` (source-NATed to it, or the
 * gateway's own from it), once it is no longer the OIP in use: conntrack keeps a binding
 * for as long as its flow goes on, so a UDP flow that never pauses (DNS from one port,
 * a tunnel) would keep leaving as an OIP no hub accepts any more. Dropped, its next
 * packet is NATed anew, to the new OIP. Inbound connections to exports are keyed by the
 * remote's address on the way back and are left alone.
 */
export async function forgetOipConnections(runner: Runner, oip: string): Promise<'flushed' | 'none'> {
  if (!ipaddr.IPv4.isValidFourPartDecimal(oip)) throw new GatewayNatInputError('oip', oip, 'is not an IPv4 address');
  const args = ['-D', '--reply-dst', oip];
  const r = await runner('conntrack', args, { allowFailure: true });
  if (r.exitCode === 0) return 'flushed';
  // Nothing matched is exit 1 with this count: the tool has no other way of saying it.
  if (r.exitCode === 1 && r.stderr.includes(' 0 flow entries have been deleted')) return 'none';
  throw new CommandError(describeCommand('conntrack', args), r.exitCode, r.stderr);
}
