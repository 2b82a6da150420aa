// Every timing and size knob of STUN/TURN in one place, with where each value comes from.

/** Initial retransmission timeout, RFC 8489 section 6.2.1 ("SHOULD be greater than 500 ms"). */
export const STUN_RTO_MS = 500;
/** Rc: transmissions of one request before giving up (RFC 8489 default 7, about 39.5 s). */
export const STUN_MAX_TRANSMISSIONS = 7;
/** Rm: after the last transmission wait Rm * RTO for a response (RFC 8489 default 16). */
export const STUN_LAST_WAIT_MULTIPLIER = 16;

/** Lifetime asked for in Allocate and Refresh; RFC 8656 section 3.2 default allocation lifetime. */
export const TURN_LIFETIME_SEC = 600;
/** Permissions last 300 s (RFC 8656 section 9), channel bindings 600 s (section 12). */
export const TURN_PERMISSION_LIFETIME_SEC = 300;
export const TURN_CHANNEL_LIFETIME_SEC = 600;
/** Refresh this long before expiry (never later than half the lifetime): one lost refresh can be retried. */
export const TURN_REFRESH_MARGIN_SEC = 60;
/** Channel numbers a client may bind (RFC 8656 section 12). */
export const TURN_CHANNEL_MIN = 0x4000;
export const TURN_CHANNEL_MAX = 0x4fff;

/** SOFTWARE attribute value: helps whoever reads a server log or a capture. */
export const SOFTWARE = 'warren';
