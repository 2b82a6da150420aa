import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { AgentMetrics, sampleOf } from '../../../../node-agent/metrics/agent-metrics.js';
import { scrapeTargets } from '../../../../node-agent/metrics/targets.js';
import { serveMetrics } from '../../../../node-agent/metrics/server.js';
import type { AgentStatus } from '../../../../node-agent/status.js';

const now = new Date('2026-11-23T12:00:30.000Z');
const status: AgentStatus = {
  node: 'edge-1', interface: 'warren', backend: 'wireguard-go', publicKey: 'k', hostAddress: '10.10.0.3', podSubnet: '10.244.3.0/24', listenPort: 51820,
  nat: { mapping: 'endpoint-independent', reflexive: undefined, punchTtl: undefined }, relay: '192.0.2.10:49160', relayTransport: 'tls',
  relayTraffic: { sentBytes: 1480, receivedBytes: 2960 },
  etcd: { publisher: 'connected', watcher: 'connected' },
  peers: [
    { node: 'cloud-vm', hostAddress: '10.10.0.11', path: 'direct', endpoint: '203.0.113.7:51820', lastHandshake: '2026-11-23T12:00:00.000Z', rxBytes: 1_500_000, txBytes: 2048 },
    { node: 'factory-gw', hostAddress: '10.10.0.12', path: 'relayed', endpoint: '127.0.0.1:40001', lastHandshake: '2026-11-23T11:58:30.000Z', rxBytes: 10, txBytes: 148 },
    { node: 'new-node', hostAddress: '10.10.0.13', path: 'checking', endpoint: undefined, lastHandshake: undefined, rxBytes: 0, txBytes: 0 },
    { node: 'unseen', hostAddress: '10.10.0.14', path: 'unknown', endpoint: undefined, lastHandshake: undefined, rxBytes: 0, txBytes: 0 },
  ],
};

describe('sampleOf', () => {
  it('counts peers by path, every path present, and takes handshake ages and bytes per peer', () => {
    const s = sampleOf(status, now);
    expect(s.paths).toEqual({ direct: 1, relayed: 1, checking: 1, punching: 0, none: 1 });
    expect(s.peers).toEqual([
      { peer: 'cloud-vm', handshakeAgeSeconds: 30, receivedBytes: 1_500_000, sentBytes: 2048 },
      { peer: 'factory-gw', handshakeAgeSeconds: 120, receivedBytes: 10, sentBytes: 148 },
      { peer: 'new-node', handshakeAgeSeconds: undefined, receivedBytes: 0, sentBytes: 0 },
      { peer: 'unseen', handshakeAgeSeconds: undefined, receivedBytes: 0, sentBytes: 0 },
    ]);
    expect(s.relayAllocated).toBe(true);
    expect(sampleOf({ ...status, relay: undefined }, now).relayAllocated).toBe(false);
  });
});

describe('AgentMetrics', () => {
  it('renders the text format, WireGuard\'s counters mirrored and peers that left gone', async () => {
    let current = status;
    const m = new AgentMetrics(async () => current, { processMetrics: false, now: () => now });
    m.cniCall({ verb: 'ADD', result: 'ok', seconds: 0.046 });
    m.cniCall({ verb: 'ADD', result: 'ok', seconds: 0.2 });
    m.cniCall({ verb: 'DEL', result: 'error' });
    await m.render();
    const text = await m.render();
    const lines = text.split('\n');
    for (const l of [
      'warren_peers{path="direct"} 1', 'warren_peers{path="relayed"} 1', 'warren_peers{path="checking"} 1', 'warren_peers{path="punching"} 0', 'warren_peers{path="none"} 1',
      'warren_peer_last_handshake_age_seconds{peer="cloud-vm"} 30',
      'warren_peer_received_bytes_total{peer="cloud-vm"} 1500000', 'warren_peer_sent_bytes_total{peer="cloud-vm"} 2048',
      'warren_relay_allocated 1', 'warren_relay_transport{transport="tls"} 1', 'warren_relay_transport{transport="udp"} 0', 'warren_relay_sent_bytes_total 1480', 'warren_relay_received_bytes_total 2960',
      'warren_cni_calls_total{verb="ADD",result="ok"} 2', 'warren_cni_calls_total{verb="DEL",result="error"} 1',
      'warren_cni_call_duration_seconds_bucket{le="0.05",verb="ADD"} 1', 'warren_cni_call_duration_seconds_count{verb="ADD"} 2',
      '# TYPE warren_cni_call_duration_seconds histogram', '# TYPE warren_peer_received_bytes_total counter',
    ]) expect(lines).toContain(l);
    expect(text).not.toContain('warren_peer_last_handshake_age_seconds{peer="new-node"}');

    current = { ...status, relay: undefined, peers: status.peers.slice(1) };
    const after = await m.render();
    expect(after).not.toContain('peer="cloud-vm"');
    expect(after.split('\n')).toContain('warren_relay_allocated 0');
    expect(after.split('\n')).toContain('warren_relay_transport{transport="tls"} 0');
  });

  it('is served at GET /metrics, with Prometheus service discovery at GET /targets, and nowhere else', async () => {
    const m = new AgentMetrics(async () => status, { processMetrics: false, now: () => now });
    const server = await serveMetrics({ address: '127.0.0.1', port: 0 }, {
      '/metrics': { render: () => m.render(), contentType: m.registry.contentType },
      '/targets': { render: async () => JSON.stringify(scrapeTargets(status, 9477)), contentType: 'application/json' },
    });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await fetch(`${base}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await r.text()).toContain('warren_peers{path="direct"} 1');
      const sd = await fetch(`${base}/targets`);
      expect(sd.headers.get('content-type')).toBe('application/json');
      expect(await sd.json()).toEqual([
        { targets: [`${status.hostAddress}:9477`], labels: { node: status.node } },
        ...status.peers.map((p) => ({ targets: [`${p.hostAddress}:9477`], labels: { node: p.node } })),
      ]);
      expect((await fetch(`${base}/`)).status).toBe(404);
      expect((await fetch(`${base}/constructor`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('answers 500 when the status cannot be read', async () => {
    const server = await serveMetrics({ address: '127.0.0.1', port: 0 }, { '/metrics': { render: async () => { throw new Error('wg show failed'); }, contentType: 'text/plain' } });
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
      expect(r.status).toBe(500);
      expect(await r.text()).toBe('wg show failed\n');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
