// One class per way warren-configgen can fail, each with a stable code and the exit
// status scripts can rely on (listed in `warren-configgen --help`, see EXIT_STATUSES).
import { WarrenError } from '../lib/errors.js';

/** Bad input (exit 2): lib's, shared with the agent. */
export { ConfigError } from '../lib/errors.js';

/** Every subnet (or host-overlay address) of the pool is taken. */
export class PoolExhaustedError extends WarrenError {
  readonly exitStatus = 4;
  constructor(message: string) {
    super('POOL_EXHAUSTED', message);
  }
}

/** The pool parameters given differ from the ones the cluster's first configgen stored. */
export class PoolMismatchError extends WarrenError {
  readonly exitStatus = 5;
  constructor(message: string) {
    super('POOL_MISMATCH', message);
  }
}

/**
 * etcd authentication is on and this node's credential found no allocation it may use:
 * nodes never allocate for themselves then, the admin does (`admin add-node`).
 */
export class NodeNotAddedError extends WarrenError {
  readonly exitStatus = 8;
  constructor(message: string, options?: { cause?: unknown }) {
    super('NODE_NOT_ADDED', message, options);
  }
}

/** The conflist or the node file could not be written (exit 6): lib's, shared with the agent. */
export { WriteError } from '../lib/write-file.js';

/** Exit statuses, as documented in --help. The store's errors carry 2, 3 and 7. */
export const EXIT_STATUSES: readonly [number, string][] = [
  [0, 'success (also when nothing had to change)'],
  [1, 'unexpected internal error'],
  [2, 'invalid input (flag, environment, config file, certificate files); nothing written or allocated'],
  [3, 'etcd unreachable for longer than --etcd-timeout'],
  [4, 'pool full: no free pod subnet or host-overlay address'],
  [5, 'pool parameters differ from those stored in etcd'],
  [6, 'the CNI config or node file could not be written'],
  [7, 'etcd refused a request (permissions) or holds data configgen cannot read'],
  [8, 'etcd authentication is on and this node has no allocation it may use: an admin runs `admin add-node` first; nothing written'],
  [130, 'stopped by SIGINT (143: by SIGTERM) between two steps: what was written is whole; run again to finish'],
];

export function exitStatusOf(err: unknown): number {
  const status = (err as { exitStatus?: unknown } | null)?.exitStatus;
  return typeof status === 'number' ? status : 1;
}
