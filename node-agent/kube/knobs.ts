// Every timing of the Node publisher in one place, each with why.

/**
 * The publisher looks at the agent's state this often, and at once when the agent says
 * something changed. A look that finds nothing new costs no API call.
 */
export const TICK_MS = 5_000;

/**
 * The Node is read again this often even when the agent's state did not change: someone
 * else may have changed it (a node deleted and registered again loses its annotations).
 * One GET a minute per node, a sixth of what kubelet's own status loop reads.
 */
export const RESYNC_MS = 60_000;

/** A request the API server has not answered by then counts as failed; the client has no timeout of its own. */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * Retries after a failed round (equal jitter, lib/etcd/retry.ts). An edge node reaches the
 * API server over the overlay: until the overlay is up every request fails, and a minute
 * between attempts keeps the log to one line a minute.
 */
export const RETRY_INITIAL_MS = 1_000;
export const RETRY_MAX_MS = 60_000;

/**
 * etcd unreachable counts against the node only after this long without its record:
 * every start has a moment before the first write, and a node that publishes its record
 * within a blip of etcd must not taint itself (NetworkUnavailable=True stops scheduling).
 */
export const ETCD_GRACE_MS = 15_000;
