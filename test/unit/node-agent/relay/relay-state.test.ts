import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRelayState, parseRelayState, readRelayState, RELAY_STATE_FILE, relayStateFits, writeRelayState, type RelayState } from '../../../../node-agent/relay/relay-state.js';

const state: RelayState = {
  server: '192.0.2.10:3478',
  username: 'warren',
  localPort: 41234,
  turn: { relayed: { address: '192.0.2.10', port: 50001 }, channels: [{ channel: 0x4000, peer: { address: '192.0.2.10', port: 50002 } }] },
  links: [{ peer: { address: '192.0.2.10', port: 50002 }, port: 38001 }],
};

describe('relay state', () => {
  it('reads back what it writes', () => {
    expect(parseRelayState(formatRelayState(state))).toEqual(state);
  });

  it('is no state at all when anything is off (the next agent allocates anew)', () => {
    const doc = JSON.parse(formatRelayState(state)) as Record<string, unknown>;
    for (const bad of [
      'not json', '[]', '{}',
      JSON.stringify({ ...doc, localPort: 70000 }),
      JSON.stringify({ ...doc, relayed: 'nowhere' }),
      JSON.stringify({ ...doc, channels: [{ channel: 'x', peer: '192.0.2.10:1' }] }),
      JSON.stringify({ ...doc, links: [{ peer: '192.0.2.10:1', port: 0 }] }),
      JSON.stringify({ ...doc, links: null }),
    ]) expect(parseRelayState(bad), bad).toBeUndefined();
  });

  it('fits only the TURN server and user it was made with', () => {
    expect(relayStateFits(state, { address: '192.0.2.10', port: 3478 }, 'warren')).toBe(true);
    expect(relayStateFits(state, { address: '192.0.2.11', port: 3478 }, 'warren')).toBe(false);
    expect(relayStateFits(state, { address: '192.0.2.10', port: 3478 }, 'other')).toBe(false);
  });

  it('lives in the state directory, readable by root only; none is no state', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-relay-state-'));
    try {
      expect(readRelayState(dir)).toBeUndefined();
      writeRelayState(dir, state);
      expect(readRelayState(dir)).toEqual(state);
      expect(statSync(join(dir, RELAY_STATE_FILE)).mode & 0o777).toBe(0o600);
      writeFileSync(join(dir, RELAY_STATE_FILE), '{"half":');
      expect(readRelayState(dir)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
