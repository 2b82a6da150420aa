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

/**
 * A peer that moves from the relay to a direct path keeps its relay link this long:
 * WireGuard's endpoint changes only with the next reconcile (a `wg set`, hundreds of ms on
 * a busy node), and until then it still sends to the link. Closed at once, the link lost
 * those packets: 760 ms of pings in the TLS-to-direct test under load.
 */
export const RELAY_LINK_LINGER_MS = 3000;

/** While relayed, a new round of direct checks starts this often (Tailscale: every minute). */
export const DIRECT_RETRY_MS = 60_000;

/**
 * A direct path is re-checked this often. The check keeps NAT mappings alive (Tailscale
 * assumes ~30 s) and is how a node notices that its NAT rebound or its router rebooted
 * (no local event tells it): a STUN Binding request and its answer, ~100 bytes each way
 * per peer, 0.5 packets/s (Tailscale's heartbeat on an active path: every 3 s). With
 * DIRECT_SUSPECT_MS it bounds the detection at 3 s, so that traffic is back within 5 s
 * (issue 11; 5 s and 1.5 s gave 7.4-8.5 s).
 */
export const DIRECT_KEEPALIVE_MS = 2000;

/**
 * A keepalive check still unanswered this long after it was sent makes the node ask STUN
 * for its public mapping at once (its NAT may have rebound: the peer's NAT then drops what
 * comes from the new port) instead of at the next refresh, up to 30 s later. Far above
 * any RTT of a direct path worth keeping.
 */
export const DIRECT_SUSPECT_MS = 1000;

/** A direct path without a successful check for this long (ten keepalives) is lost: start over. */
export const DIRECT_LOST_MS = 20_000;

/** Small-TTL punches are sent this many times, spaced by CHECK_INTERVAL_MS, within the settle time. */
export const PUNCH_REPEATS = 3;

/** The engine runs every peer's path decision this often; path.ts's intervals are multiples of it. */
export const ENGINE_TICK_MS = 50;

/**
 * A check answered later than this after it was sent no longer counts (its transaction is
 * forgotten). Longer than any RTT a direct path worth taking has; short enough that the
 * table of open transactions stays small (one per candidate per CHECK_INTERVAL_MS).
 */
export const CHECK_ANSWER_WINDOW_MS = 5000;

/**
 * A request from a peer triggers a check back to its source (RFC 8445 section 7.3.1.4)
 * unless one went there, or an answer came from there, this recently. Without it two
 * agents would answer each other's triggered checks with triggered checks forever.
 */
export const TRIGGERED_CHECK_HOLDOFF_MS = 1000;

/** After a relay link could not be opened (TURN down, permission refused), the peer waits this long before asking again. */
export const RELAY_RETRY_MS = 2000;

/**
 * Hop count to the STUN server: TTLs 1..HOPS_MAX_TTL are tried at once. Eight covers a
 * host behind several NATs with the server a few routers out; a longer path just means
 * the punch TTL is capped (PUNCH_TTL_MAX).
 */
export const HOPS_MAX_TTL = 8;
/** A batch without any answer is sent again after this long, HOPS_ATTEMPTS times in all. */
export const HOPS_WAIT_MS = 1000;
export const HOPS_ATTEMPTS = 3;
/**
 * After the first answer, answers to smaller TTLs may still be on the way (all were sent
 * together): wait as long again as the first took, at least this long.
 */
export const HOPS_GRACE_MIN_MS = 20;

/**
 * Punch TTL bounds. At least 2: one hop would die at the first router, which for a host
 * behind a NAT is its own NAT, opening nothing. At most 8: beyond that a path this long
 * has more routers between the NATs than we can count on (the TTL is a guess anyway).
 */
export const PUNCH_TTL_MIN = 2;
export const PUNCH_TTL_MAX = 8;

/**
 * Both agents decide a path for each other at about the same moment (checks succeed
 * within a round trip; each gives up on direct after its own 4 s), and a WireGuard given
 * a first endpoint sends a handshake initiation at once. Two initiations that cross leave
 * both sides responders, each having dropped the other's response (one handshake slot
 * per peer: receiving an initiation replaces the one sent), and no data flows until one
 * retries 5 s later (seen on relayed pairs: first packet 5, 10, 15 s late). So only the
 * node whose name sorts first hands WireGuard its first endpoint at once. The other holds
 * its own back this long: its WireGuard answers the first node's initiation from
 * wherever it arrives (roaming sets the endpoint) and never starts a handshake of its
 * own meanwhile. The hold is relative to this node's own decision, so it must outlast
 * the skew between the two decisions; when the first node never initiates (it has no
 * path of its own yet), this node's WireGuard starts after the hold.
 */
export const FIRST_ENDPOINT_HOLD_MS = 1_000;
