// Every knob of the WireGuard port share and the probe socket in one place.

/** The nftables table the port share owns: replaced as a whole, never edited rule by rule. */
export const PORT_SHARE_TABLE = 'warren_probe';

/**
 * Bumped whenever the rules change meaning; it is part of each rule's comment, so an agent
 * of a newer version sees an older table as out of sync and replaces it.
 */
export const PORT_SHARE_VERSION = 1;

/**
 * What a punch carries. It is meant to die in the internet; if a short path lets it arrive,
 * the far WireGuard drops it (no valid message type) and the far agent never sees it (no
 * STUN magic cookie), so it needs no meaning.
 */
export const PUNCH_PAYLOAD = Buffer.from('warren-punch');

/**
 * How long the self-check waits for its datagrams over loopback. They arrive within
 * about a millisecond; a missing rewrite shows as a timeout, so this bounds the cost of
 * finding the table gone.
 */
export const SELF_CHECK_TIMEOUT_MS = 250;
