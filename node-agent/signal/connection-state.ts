// What the publisher and the watcher tell about their link to etcd, for logs and the
// agent's status: connected, or retrying since when and why. Pure transitions, so the
// "since" of a long outage survives every failed attempt inside it.
import { errorMessage } from '../../lib/errors.js';

export type ConnectionState =
  | { state: 'starting'; since: Date }
  | { state: 'connected'; since: Date }
  | { state: 'retrying'; since: Date; attempts: number; lastError: string }
  | { state: 'stopped'; since: Date };

export function succeeded(s: ConnectionState, now: Date): ConnectionState {
  return s.state === 'connected' ? s : { state: 'connected', since: now };
}

export function failed(s: ConnectionState, now: Date, err: unknown): ConnectionState {
  return s.state === 'retrying'
    ? { ...s, attempts: s.attempts + 1, lastError: errorMessage(err) }
    : { state: 'retrying', since: now, attempts: 1, lastError: errorMessage(err) };
}
