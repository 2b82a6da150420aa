import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseWgDump } from '../../../../node-agent/wireguard/dump.js';
import { peerStatuses } from '../../../../node-agent/wireguard/status.js';

describe('peerStatuses', () => {
  it('gives each peer its endpoint, handshake time and byte counts', () => {
    const dump = parseWgDump(readFileSync(new URL('fixtures/wg-dump-node-a.txt', import.meta.url), 'utf8'));
    const [c, d, e] = peerStatuses(dump);
    expect(c).toEqual({
      publicKey: '3TZn6WXlYl2YQGizZ1TvREbHHLwqWnq0nl31NHGi8zU=', endpoint: '192.0.2.2:51821',
      latestHandshake: new Date(1795442875 * 1000), rxBytes: 988, txBytes: 1224,
    });
    expect(d!.latestHandshake).toBeUndefined();
    expect(e!.endpoint).toBeUndefined();
  });
});
