// One class per way the port share can fail, each with a stable code, so the traversal
// engine decides on `code` alone (fix the configuration, re-apply the table, fall back).
import { WarrenError } from '../../lib/errors.js';

/** Ports or table name the rewrite cannot be built from; nothing was touched. */
export class PortShareConfigError extends WarrenError {
  constructor(message: string) {
    super('PORT_SHARE_INVALID', message);
  }
}

/**
 * The rewrite is not doing its job in this namespace (table missing, other ports, rules
 * changed behind the agent's back). A STUN answer then describes PROBEPORT's mapping, not
 * WireGuard's, so it is refused rather than handed to peers as WireGuard's endpoint.
 */
export class PortShareInactiveError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PORT_SHARE_INACTIVE', message, options);
  }
}
