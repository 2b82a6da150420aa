import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatStatus, readStatus, serveStatus, type AgentStatus } from '../../../node-agent/status.js';

const status: AgentStatus = {
  node: 'edge-1', interface: 'warren', backend: 'wireguard-go', publicKey: 'k', hostAddress: '10.10.0.3', podSubnet: '10.244.3.0/24', listenPort: 51820,
  nat: { mapping: 'endpoint-independent', reflexive: '198.51.100.6:51820', punchTtl: 2 }, relay: '192.0.2.10:49160', relayTraffic: { sentBytes: 0, receivedBytes: 0 },
  etcd: { publisher: 'connected', watcher: 'connected' },
  peers: [
    { node: 'cloud-vm', hostAddress: '10.10.0.11', path: 'direct', endpoint: '203.0.113.7:51820', lastHandshake: '2026-11-23T12:00:00.000Z', rxBytes: 1_500_000, txBytes: 2048 },
    { node: 'factory-gw', hostAddress: '10.10.0.12', path: 'relayed', endpoint: '127.0.0.1:40001', lastHandshake: undefined, rxBytes: 0, txBytes: 148 },
  ],
};

describe('status', () => {
  it('says what a direct endpoint is: a LAN peer shows as direct (lan)', () => {
    const lan = { ...status, peers: [{ ...status.peers[0]!, node: 'edge-2', path: 'direct', via: 'lan', endpoint: '10.1.0.3:51820' }] };
    expect(formatStatus(lan, new Date('2026-11-23T12:00:30.000Z')).split('\n')).toContain('edge-2  direct (lan)  10.1.0.3:51820  30s ago    1.4 MiB  2.0 KiB');
  });

  it('says when the relay reaches its TURN server over TLS, and so do its relayed peers', () => {
    const tls = { ...status, relayTransport: 'tls', peers: [{ ...status.peers[1]!, via: 'tls' }] };
    const lines = formatStatus(tls, new Date('2026-11-23T12:00:30.000Z')).split('\n');
    expect(lines[1]).toContain('relay 192.0.2.10:49160 over TLS;');
    expect(lines.find((l) => l.startsWith('factory-gw'))).toMatch(/^factory-gw +relayed \(tls\) +127\.0\.0\.1:40001 +never/);
  });

  it('prints one line per peer with its path, endpoint, handshake age and traffic', () => {
    const text = formatStatus(status, new Date('2026-11-23T12:00:30.000Z'));
    expect(text).toContain('NAT endpoint-independent, public 198.51.100.6:51820, punch TTL 2; relay 192.0.2.10:49160');
    expect(text.split('\n')).toContain('cloud-vm    direct   203.0.113.7:51820  30s ago    1.4 MiB  2.0 KiB');
    expect(text.split('\n')).toContain('factory-gw  relayed  127.0.0.1:40001    never      0 B      148 B');
  });

  it('shows the relay\'s traffic and the Node publisher\'s state: off, ok with its last patch, or the error', () => {
    const at = new Date('2026-11-23T12:00:30.000Z');
    const line = (k: AgentStatus['kubernetes'], relayTraffic = { sentBytes: 0, receivedBytes: 0 }) => formatStatus({ ...status, kubernetes: k, relayTraffic }, at).split('\n').slice(1, 3);
    expect(line(undefined, { sentBytes: 2048, receivedBytes: 100 })).toEqual([
      'NAT endpoint-independent, public 198.51.100.6:51820, punch TTL 2; relay 192.0.2.10:49160 (sent 2.0 KiB, received 100 B); etcd publisher connected, watcher connected',
      'kubernetes off',
    ]);
    const base = { node: 'edge-1', server: 'https://10.96.0.1:443', failures: 0 };
    expect(line({ ...base, state: 'ok', condition: { status: 'False', reason: 'WarrenOverlayUp' }, lastSyncAt: '2026-11-23T12:00:27.000Z', lastPatchAt: '2026-11-23T11:58:30.000Z', lastPatch: ['NetworkUnavailable=False (WarrenOverlayUp)'] })[1])
      .toBe('kubernetes node edge-1 at https://10.96.0.1:443: NetworkUnavailable False (WarrenOverlayUp); last sync ok 3s ago; last patch 2m ago (NetworkUnavailable=False (WarrenOverlayUp))');
    expect(line({ ...base, state: 'error', failures: 3, lastError: 'GET node edge-1: HTTP 403: forbidden', podCIDRConflict: 'the Node has spec.podCIDR 10.244.9.0/24, node.json says 10.244.3.0/24' })[1])
      .toBe('kubernetes node edge-1 at https://10.96.0.1:443: NetworkUnavailable not written yet; ERROR (3 failed in a row): GET node edge-1: HTTP 403: forbidden; last patch none; the Node has spec.podCIDR 10.244.9.0/24, node.json says 10.244.3.0/24');
  });

  it('shows the SD-EWAN gateway role, and on the active node each hub\'s OIP, SA states, last rekey and traffic', () => {
    const at = new Date('2026-11-23T12:00:30.000Z');
    const member = formatStatus({ ...status, gateway: { role: 'member', activeNode: 'cloud-vm', device: 'site-a', hubs: [] } }, at);
    expect(member).toContain('SD-EWAN device site-a: this node member, active gateway cloud-vm\n');
    const active = formatStatus({ ...status, gateway: { role: 'active', activeNode: 'edge-1', device: 'site-a', dataPath: 'libipsec', hubs: [
      { hub: 'hub-1', ike: 'established', child: 'installed', oip: '10.10.0.5', lastRekey: '2026-11-23T12:00:00.000Z', bytesIn: 2048, bytesOut: 100 },
      { hub: 'hub-2', ike: 'connecting', child: 'down', bytesIn: 0, bytesOut: 0 },
    ] } }, at).split('\n');
    expect(active).toContain('SD-EWAN device site-a: this node active, active gateway edge-1, ESP by libipsec');
    expect(active).toContain('hub-1  10.10.0.5  established  installed  30s ago  2.0 KiB  100 B');
    expect(active).toContain('hub-2  -          connecting   down       never    0 B      0 B');
    expect(formatStatus(status, at)).not.toContain('SD-EWAN');
  });

  it('prints why a peer has no path', () => {
    const none = { ...status, peers: [{ ...status.peers[1]!, path: 'none', reason: 'no direct path, and this node has no TURN relay', endpoint: undefined, txBytes: 0 }] };
    expect(formatStatus(none, new Date('2026-11-23T12:00:30.000Z')).split('\n')).toContain('factory-gw  none  -         never      0 B  0 B  no direct path, and this node has no TURN relay');
  });

  it('is served over a unix socket, and a missing agent is a clear error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-status-'));
    try {
      const server = await serveStatus(join(dir, 'agent.sock'), async () => status);
      expect(await readStatus(join(dir, 'agent.sock'))).toEqual(JSON.parse(JSON.stringify(status)));
      await new Promise((r) => server.close(r));
      await expect(readStatus(join(dir, 'nothing.sock'))).rejects.toThrow(/no agent answers at .*nothing.sock/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves on a socket other users cannot connect to, in a directory they cannot enter, whatever the umask', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-status-'));
    const umask = process.umask(0);
    try {
      const server = await serveStatus(join(dir, 'run', 'agent.sock'), async () => status);
      expect(statSync(join(dir, 'run', 'agent.sock')).mode & 0o777).toBe(0o660);
      expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o750);
      // the process's umask is its own again
      expect(process.umask(0)).toBe(0);
      await new Promise((r) => server.close(r));
    } finally {
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
