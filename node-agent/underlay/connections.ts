// A TCP connection does not follow the node when its underlay moves: bound to an address
// that is gone, or NATed by a router the node no longer goes through, it hangs until
// gRPC's keepalive gives up (up to 10 s, lib/etcd/store.ts) while the agent waits to
// republish its record. As Android does on a network change, the agent destroys its
// connections to etcd (SOCK_DESTROY through `ss -K`, kernel CONFIG_INET_DIAG_DESTROY);
// gRPC dials again at once over the new path and the watcher resumes from its revision.
import ipaddr from 'ipaddr.js';
import type { Runner } from '../../lib/runner.js';

/** Pure: `ss` arguments that destroy the TCP connections to one etcd endpoint URL; undefined for a host name (ss filters by address). */
export function ssKillArgs(endpoint: string): string[] | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!ipaddr.isValid(host)) return undefined;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return ['-K', '-tn', 'dst', host.includes(':') ? `[${host}]` : host, 'dport', '=', `:${port}`];
}

/** Destroys this node's TCP connections to the etcd endpoints; returns the endpoints it could not name by address. */
export async function dropEtcdConnections(runner: Runner, endpoints: readonly string[]): Promise<string[]> {
  const skipped: string[] = [];
  for (const e of endpoints) {
    const args = ssKillArgs(e);
    if (!args) skipped.push(e);
    else await runner('ss', args);
  }
  return skipped;
}
