// Every timing of path selection in one place, each with why.

/**
 * From learning a peer's candidates to the first full-TTL packet toward them. Both sides
 * punch (small TTL) first; a full packet that reached the far NAT before the far side's
 * punch would hit the conntrack trap of routers that accept unsolicited input. Both learn
 * each other through one etcd watch, tens of ms apart: a second covers it with margin.
 */
export const PUNCH_SETTLE_MS = 1000;

/** Connectivity checks (STUN Binding requests over the shared WireGuard port) are resent this often while checking. */
export const CHECK_INTERVAL_MS = 200;

/** A round of checks that found no direct path by then falls back to the relay. */
export const CHECK_ROUND_MS = 4000;

/** While relayed, a new round of direct checks starts this often (Tailscale: every minute). */
export const DIRECT_RETRY_MS = 60_000;

/** A direct path is re-checked this often; the check also keeps NAT mappings alive (Tailscale assumes ~30 s). */
export const DIRECT_KEEPALIVE_MS = 15_000;

/** A direct path without a successful check for this long is lost (NAT rebinding, path down): start over. */
export const DIRECT_LOST_MS = 40_000;

/** Small-TTL punches are sent this many times, spaced by CHECK_INTERVAL_MS, within the settle time. */
export const PUNCH_REPEATS = 3;
