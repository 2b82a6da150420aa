import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatRelayState, parseRelayState, readRelayState, RELAY_STATE_FILE, relayStateFits, writeRelayState, type RelayState } from '../../../../node-agent/relay/relay-state.js';

const state: RelayState = {
  server: '192.0.2.10:3478',
  username: 'warren',
  localPort: 41234,
  transport: 'udp',
  turn: { relayed: { address: '192.0.2.10', port: 50001 }, channels: [{ channel: 0x4000, peer: { address: '192.0.2.10', port: 50002 } }] },
  links: [{ peer: { address: '192.0.2.10', port: 50002 }, port: 38001 }],
};

const issued: RelayState = {
  ...state,
  username: '1795950000:node-a',
  credential: { username: '1795950000:node-a', password: 'c2VjcmV0', issuedAt: new Date('2026-11-29T12:00:00Z'), expiresAt: new Date('2026-11-29T13:00:00Z') },
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
      JSON.stringify({ ...doc, transport: 'sctp' }),
    ]) expect(parseRelayState(bad), bad).toBeUndefined();
  });

  it('fits only the TURN server and user it was made with', () => {
    const fits = (s: RelayState, address: string, username: string) => relayStateFits(s, { address, port: 3478 }, { issued: false, username });
    expect(fits(state, '192.0.2.10', 'warren')).toBe(true);
    expect(fits(state, '192.0.2.11', 'warren')).toBe(false);
    expect(fits(state, '192.0.2.10', 'other')).toBe(false);
    // An allocation made with an issued credential is not the static user's.
    expect(fits(issued, '192.0.2.10', issued.username)).toBe(false);
  });

  it('resumes only a UDP allocation: over TCP or TLS it ended with the previous agent\'s connection, its links\' ports are still kept', () => {
    const tls: RelayState = { ...state, server: '192.0.2.10:443', transport: 'tls' };
    expect(parseRelayState(formatRelayState(tls))).toEqual(tls);
    expect(relayStateFits(tls, { address: '192.0.2.10', port: 443 }, { issued: false, username: 'warren' })).toBe(false);
    // Files of agents before TCP and TLS name no transport: theirs was UDP.
    const doc = JSON.parse(formatRelayState(state)) as Record<string, unknown>;
    delete doc.transport;
    expect(parseRelayState(JSON.stringify(doc))).toEqual(state);
  });

  it('keeps an issued credential\'s password for the next agent, who resumes only before its rotation time', () => {
    expect(parseRelayState(formatRelayState(issued))).toEqual(issued);
    const fits = (now: string) => relayStateFits(issued, { address: '192.0.2.10', port: 3478 }, { issued: true, now: new Date(now) });
    // Issued 12:00, expires 13:00: rotation due at 12:45.
    expect(fits('2026-11-29T12:44:59Z')).toBe(true);
    expect(fits('2026-11-29T12:45:00Z')).toBe(false);
    expect(relayStateFits(state, { address: '192.0.2.10', port: 3478 }, { issued: true, now: new Date('2026-11-29T12:00:00Z') })).toBe(false);
    const doc = JSON.parse(formatRelayState(issued)) as Record<string, unknown>;
    expect(parseRelayState(JSON.stringify({ ...doc, credential: { password: 'p', issuedAt: 'never', expiresAt: 'x' } }))).toBeUndefined();
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
