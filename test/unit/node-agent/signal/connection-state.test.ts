import { describe, expect, it } from 'vitest';
import { failed, succeeded, type ConnectionState } from '../../../../node-agent/signal/connection-state.js';

const t = (s: number) => new Date(s * 1000);

describe('connection state', () => {
  it('keeps "retrying since" at the first failure of an outage, counting attempts', () => {
    let s: ConnectionState = { state: 'connected', since: t(0) };
    s = failed(s, t(10), new Error('ECONNREFUSED'));
    s = failed(s, t(12), new Error('deadline exceeded'));
    expect(s).toEqual({ state: 'retrying', since: t(10), attempts: 2, lastError: 'deadline exceeded' });
    s = succeeded(s, t(15));
    expect(s).toEqual({ state: 'connected', since: t(15) });
    expect(succeeded(s, t(20))).toBe(s);
  });
});
