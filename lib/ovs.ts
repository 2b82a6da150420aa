// Executor for ovs-vsctl: every call is one OVSDB transaction, commands joined by `--`.
import { CommandError } from './errors.js';
import { OvsdbError } from './ovsdb/client.js';
import type { Runner } from './runner.js';

export type VsctlCommand = readonly string[];

export interface OvsTarget {
  /** OVSDB socket, e.g. unix:/run/openvswitch/db.sock; ovs-vsctl's default when unset. */
  db?: string;
  timeoutSeconds?: number;
}

export function vsctlArgs(target: OvsTarget, commands: readonly VsctlCommand[]): string[] {
  const args = [`--timeout=${target.timeoutSeconds ?? 10}`];
  if (target.db) args.push(`--db=${target.db}`);
  commands.forEach((c, i) => {
    if (i > 0) args.push('--');
    args.push(...c);
  });
  return args;
}

/** Runs the transaction; a failure is an OvsdbError, as for the JSON-RPC client. */
export async function vsctl(runner: Runner, target: OvsTarget, commands: readonly VsctlCommand[]): Promise<string> {
  try {
    const { stdout } = await runner('ovs-vsctl', vsctlArgs(target, commands));
    return stdout;
  } catch (err) {
    if (err instanceof CommandError) throw new OvsdbError(err.message, { cause: err });
    throw err;
  }
}

export interface OvsdbTable {
  headings: string[];
  data: unknown[][];
}

/** Decodes OVSDB's JSON cell encoding (["map", [[k,v]...]], ["set", [...]], ["uuid", id]). */
export function ovsdbValue(cell: unknown): unknown {
  if (!Array.isArray(cell)) return cell;
  const [kind, value] = cell as [string, unknown];
  if (kind === 'map') return Object.fromEntries((value as [unknown, unknown][]).map(([k, v]) => [String(ovsdbValue(k)), ovsdbValue(v)]));
  if (kind === 'set') return (value as unknown[]).map(ovsdbValue);
  if (kind === 'uuid' || kind === 'named-uuid') return value;
  return cell;
}

export function ovsdbRows(table: OvsdbTable): Record<string, unknown>[] {
  return table.data.map((row) => Object.fromEntries(table.headings.map((h, i) => [h, ovsdbValue(row[i])])));
}
