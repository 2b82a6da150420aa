// How far the STUN server is, in routers, and from that the TTL of a punch. A punch must
// pass this node's own NATs (they sit between the host and the internet) and die before
// the far side's NAT records it (the conntrack trap, TESTBED.md). The far NAT is at least
// as far out as the STUN server's first hop beyond the internet core: with H the hop
// count to the server (the smallest TTL it answers), H - 1 routers are passed and the
// datagram dies at the one before the server. In natlab that is exactly the internet
// router (site.ttlDyingInInternet); on the real internet the far NAT is usually further.
import type { Endpoint } from '../nat/stun-address.js';
import { bindingRequest, decodeStun, encodeStun, isStun } from '../nat/stun.js';
import { systemTimers, type Timers } from '../nat/timers.js';
import type { UdpPort } from '../nat/udp.js';
import { HopsUnknownError } from './errors.js';
import { HOPS_ATTEMPTS, HOPS_GRACE_MIN_MS, HOPS_MAX_TTL, HOPS_WAIT_MS, PUNCH_TTL_MAX, PUNCH_TTL_MIN } from './knobs.js';

/** What the hop count needs of the Prober: its shared port to listen, and its queued small-TTL send. */
export interface HopProber {
  readonly port: Pick<UdpPort, 'onMessage'>;
  punch(to: Endpoint, ttl: number, payload: Buffer): Promise<void>;
}

export interface HopsOptions {
  timers?: Timers;
  maxTtl?: number;
  waitMs?: number;
  attempts?: number;
}

/** Pure: the punch TTL for a server `hops` away, clamped to [PUNCH_TTL_MIN, PUNCH_TTL_MAX]. */
export function punchTtlFor(hops: number): number {
  return Math.min(PUNCH_TTL_MAX, Math.max(PUNCH_TTL_MIN, hops - 1));
}

/**
 * The smallest TTL at which `server` answers a Binding request from the prober's socket.
 * TTLs 1..maxTtl go out at once, each its own transaction, through the prober's queue
 * (the TTL is a socket option: queued, no other datagram leaves with it). ICMP
 * time-exceeded never reaches an unconnected Node socket, so silence is all a short TTL
 * gives. A batch with no answer is sent again; throws HopsUnknownError after the last.
 */
export async function hopsTo(prober: HopProber, server: Endpoint, options: HopsOptions = {}): Promise<number> {
  const maxTtl = options.maxTtl ?? HOPS_MAX_TTL;
  const attempts = options.attempts ?? HOPS_ATTEMPTS;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const hops = await oneBatch(prober, server, maxTtl, options);
    if (hops !== undefined) return hops;
  }
  throw new HopsUnknownError(server, maxTtl, attempts);
}

function oneBatch(prober: HopProber, server: Endpoint, maxTtl: number, options: HopsOptions): Promise<number | undefined> {
  const timers = options.timers ?? systemTimers;
  const waitMs = options.waitMs ?? HOPS_WAIT_MS;
  const ttlOf = new Map<string, number>();
  const requests: { ttl: number; data: Buffer }[] = [];
  for (let ttl = 1; ttl <= maxTtl; ttl++) {
    const msg = bindingRequest();
    ttlOf.set(msg.transactionId.toString('hex'), ttl);
    requests.push({ ttl, data: encodeStun(msg, { fingerprint: true }) });
  }
  const started = timers.now();
  return new Promise((resolve) => {
    let best: number | undefined;
    let timer = timers.setTimeout(() => finish(), waitMs);
    let graceSet = false;
    const finish = (): void => {
      unsubscribe();
      timers.clearTimeout(timer);
      resolve(best);
    };
    const unsubscribe = prober.port.onMessage((data, from) => {
      if (from.address !== server.address || from.port !== server.port || !isStun(data)) return;
      const ttl = ttlOf.get(data.subarray(8, 20).toString('hex'));
      if (ttl === undefined) return;
      try {
        if (decodeStun(data).cls !== 'success') return;
      } catch {
        return; // malformed: as if lost
      }
      best = Math.min(best ?? ttl, ttl);
      if (best === 1 || graceSet) {
        if (best === 1) finish();
        return;
      }
      graceSet = true;
      timers.clearTimeout(timer);
      timer = timers.setTimeout(() => finish(), Math.max(HOPS_GRACE_MIN_MS, timers.now() - started));
    });
    // Sends that fail (no route yet) are silence too: the batch times out and is retried.
    for (const r of requests) prober.punch(server, r.ttl, r.data).catch(() => undefined);
  });
}
