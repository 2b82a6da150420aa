// Every timing knob of the WireGuard device in one place.

/** wireguard-go opens its control socket about 10 ms after start here; 5 s covers a loaded node. */
export const WIREGUARD_GO_START_TIMEOUT_MS = 5_000;

/** After its TUN is deleted wireguard-go notices within about 1.5 s (measured) and exits. */
export const WIREGUARD_GO_STOP_TIMEOUT_MS = 5_000;

export const POLL_INTERVAL_MS = 5;

/** A live wireguard-go accepts a connection at once; a stale socket refuses at once. */
export const UAPI_CONNECT_TIMEOUT_MS = 500;

/** How much of wireguard-go's log an error message quotes. */
export const LOG_TAIL_BYTES = 1_000;
