// A peer's UDP endpoint in wg's text form: "1.2.3.4:51820" or "[2001:db8::1]:51820".
// Canonical, so that a desired endpoint compares equal to the one `wg show` prints.
import { CidrError, parseAddress } from '../../lib/cidr.js';

/** The canonical "ip:port", or undefined when `text` is not a literal address and port (wg would resolve a name; Warren never hands it one). */
export function canonicalEndpoint(text: string): string | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  try {
    const a = parseAddress(m[1]!);
    return a.kind() === 'ipv6' ? `[${a.toString()}]:${port}` : `${a.toString()}:${port}`;
  } catch (err) {
    if (err instanceof CidrError) return undefined;
    throw err;
  }
}
