import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRelayedPeers, readRelayedPeers, RELAYED_PEERS_FILE, writeRelayedPeers } from '../../../../node-agent/engine/relayed-peers.js';

describe('relayed peers kept for the next agent', () => {
  it('round-trips through the state directory, sorted, and is no hint when absent or unreadable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-relayed-'));
    try {
      expect(readRelayedPeers(dir)).toEqual(new Set());
      writeRelayedPeers(dir, ['edge-sym', 'cp']);
      expect(readFileSync(join(dir, RELAYED_PEERS_FILE), 'utf8')).toBe('["cp","edge-sym"]\n');
      expect((statSync(join(dir, RELAYED_PEERS_FILE)).mode & 0o777).toString(8)).toBe('600');
      expect(readRelayedPeers(dir)).toEqual(new Set(['cp', 'edge-sym']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const junk of ['', '{', '{"cp":1}', '42', 'null']) expect(parseRelayedPeers(junk)).toEqual(new Set());
    expect(parseRelayedPeers('["a", 3, null, "b"]')).toEqual(new Set(['a', 'b']));
  });
});
