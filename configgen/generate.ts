// The default command: decide the MTU, find (or claim) the node's allocation, then
// write node.json and, last, the conflist: a runtime that sees the conflist finds
// everything else already in place.
import { join } from 'node:path';
import type { EtcdStore } from '../lib/etcd/store.js';
import { MtuError, podMtu, uplinkMtu } from '../lib/mtu.js';
import type { Runner } from '../lib/runner.js';
import { CONFLIST_NAME, renderConflist, renderNodeFile, toFileText, type ConflistInput } from './conflist.js';
import { ConfigError } from './errors.js';
import { ownAllocation } from './own-allocation.js';
import type { NodeAllocation } from './pool.js';
import type { AllocateConfig } from './settings.js';
import { NODE_FILE } from '../lib/node-file.js';
import { writeFileAtomic, type WriteOutcome } from '../lib/write-file.js';


export interface GenerateResult {
  allocation: NodeAllocation;
  created: boolean;
  mtu: number;
  /** Absent when the caller asked for node.json only. */
  conflist?: { path: string; outcome: WriteOutcome };
  nodeFile: { path: string; outcome: WriteOutcome };
}

/** The MTU from the flag, else from the uplink; decided before etcd is touched. */
export async function decideMtu(config: AllocateConfig, runner: Runner): Promise<number> {
  if (config.mtu !== undefined) return config.mtu;
  try {
    return podMtu((await uplinkMtu(runner)).mtu);
  } catch (err) {
    if (err instanceof MtuError) throw new ConfigError(`${err.message}; give the pod MTU with --mtu`, { cause: err });
    throw err;
  }
}

export async function generate(config: AllocateConfig, store: Pick<EtcdStore, 'txn' | 'range'>, mtu: number,
  options: { writeConflist: boolean } = { writeConflist: true }): Promise<GenerateResult> {
  const { allocation, created } = await ownAllocation(store, config.keys, config.pool, config.node);
  const input: ConflistInput = {
    allocation,
    pool: config.pool,
    bridge: config.bridge,
    mtu,
    logFile: config.logFile,
    ovsdb: config.ovsdb,
    ipamDataDir: config.ipamDataDir,
  };
  const nodePath = join(config.stateDir, NODE_FILE);
  const nodeOutcome = writeFileAtomic(nodePath, toFileText(renderNodeFile(input)));
  const nodeFile = { path: nodePath, outcome: nodeOutcome };
  if (!options.writeConflist) return { allocation, created, mtu, nodeFile };
  const conflistPath = join(config.cniConfDir, CONFLIST_NAME);
  const conflistOutcome = writeFileAtomic(conflistPath, toFileText(renderConflist(input)));
  return { allocation, created, mtu, conflist: { path: conflistPath, outcome: conflistOutcome }, nodeFile };
}
