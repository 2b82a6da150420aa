// The publisher's next move, decided from what it knows: no lease, grant one; etcd holds
// other content than wanted (or nothing under this lease), write it; a keep-alive due,
// send it; otherwise wait. Pure, with `now` passed in, so the schedule is tested without
// a clock. Writes happen only on a content change or a new lease: an unchanged record
// costs one keep-alive per TTL / KEEPALIVES_PER_TTL and nothing else.

export interface PublishState {
  leaseId: string | undefined;
  /** contentKey of what etcd holds under the current lease; undefined: nothing known to be there. */
  written: string | undefined;
  /** contentKey of the record that should be there. */
  desired: string;
  /** Monotonic ms at which the lease needs its next keep-alive. */
  keepAliveDueAt: number;
}

export type PublishStep = { do: 'grant' } | { do: 'put' } | { do: 'keepalive' } | { do: 'wait'; ms: number };

export function nextPublishStep(s: PublishState, now: number): PublishStep {
  if (s.leaseId === undefined) return { do: 'grant' };
  if (s.written !== s.desired) return { do: 'put' };
  if (now >= s.keepAliveDueAt) return { do: 'keepalive' };
  return { do: 'wait', ms: s.keepAliveDueAt - now };
}

/** Pure: when the next keep-alive is due after etcd said the lease has `ttlSeconds` left. */
export function keepAliveDue(now: number, ttlSeconds: number, perTtl: number): number {
  return now + (ttlSeconds * 1000) / perTtl;
}
