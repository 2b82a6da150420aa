// Every timing knob of signalling in one place, with the reason for each value.

/**
 * Lease of a node's record. A crashed node's record disappears this long after its last
 * keep-alive, so peers hold a dead node's tunnel at most this long; an agent restart
 * must fit inside it so peers never see the record go (see publisher.ts).
 */
export const RECORD_TTL_SECONDS = 30;

/** Keep-alives per TTL: three, as etcd's Go client does, so two may be lost. */
export const KEEPALIVES_PER_TTL = 3;

/** The watcher emits once no change came for this long... */
export const EMIT_QUIET_MS = 100;
/** ...or this long after the first unemitted change, whichever is first, so a steady stream of changes still converges. */
export const EMIT_MAX_WAIT_MS = 1_000;

/** Retry schedule while etcd is unreachable (equal jitter, lib/etcd/retry.ts). */
export const RETRY_INITIAL_MS = 200;
export const RETRY_MAX_MS = 5_000;

/** Candidates a record may list: more is a bug, and every peer would probe them all. */
export const MAX_CANDIDATES = 32;
