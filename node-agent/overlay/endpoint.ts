// A peer's UDP endpoint in wg's text form: "1.2.3.4:51820" or "[2001:db8::1]:51820".
// Canonical, so that a desired endpoint compares equal to the one `wg show` prints.
import { formatEndpoint, parseEndpoint } from '../nat/stun-address.js';

/** The canonical "ip:port", so that a desired endpoint compares equal to the one `wg show` prints; undefined as for parseEndpoint. */
export function canonicalEndpoint(text: string): string | undefined {
  const e = parseEndpoint(text);
  return e && formatEndpoint(e);
}
