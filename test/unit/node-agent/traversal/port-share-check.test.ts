// The loopback check of the rewrite, without nftables: a socket bound on "WGPORT" itself
// behaves exactly like a working rewrite (its datagrams leave from WGPORT, STUN to WGPORT
// reaches it); a socket on any other port behaves like a missing one.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import type { UdpPort } from '../../../../node-agent/nat/udp.js';
import { udpPort } from '../../../../node-agent/nat/udp.js';
import { PortShareInactiveError } from '../../../../node-agent/traversal/errors.js';
import { checkPortShare } from '../../../../node-agent/traversal/port-share-check.js';

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

async function bound(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port };
}

describe('checkPortShare', () => {
  it('passes when datagrams leave from WGPORT and STUN to WGPORT comes back', async () => {
    const wg = await bound();
    await expect(checkPortShare({ probe: udpPort(wg.socket), probePort: 1, wgPort: wg.port })).resolves.toBeUndefined();
  });

  it('fails at once, naming the port, when datagrams leave from the probe port', async () => {
    const probe = await bound();
    const wg = await bound(); // someone else on WGPORT, as WireGuard is
    const started = performance.now();
    const err = await checkPortShare({ probe: udpPort(probe.socket), probePort: probe.port, wgPort: wg.port, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortShareInactiveError);
    expect(err).toMatchObject({ code: 'PORT_SHARE_INACTIVE', message: expect.stringContaining(`left from port ${probe.port}, not ${wg.port}`) });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('times out naming both halves when nothing comes through', async () => {
    const wg = await bound();
    const silent: UdpPort = { send: async () => {}, onMessage: () => () => {} };
    await expect(checkPortShare({ probe: silent, probePort: 1, wgPort: wg.port, timeoutMs: 30 })).rejects.toThrow(
      /never reached the helper; a STUN message to 127\.0\.0\.1:\d+ never reached the probe socket within 30 ms/,
    );
  });
});
