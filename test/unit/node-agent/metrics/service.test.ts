import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS_PORT } from '../../../../node-agent/config.js';
import { MetricsService } from '../../../../node-agent/metrics/service.js';
import type { AgentStatus } from '../../../../node-agent/status.js';

const status = { peers: [], relay: undefined, relayTraffic: { sentBytes: 0, receivedBytes: 0 } } as unknown as AgentStatus;
let service: MetricsService | undefined;
let dir: string | undefined;
afterEach(async () => {
  await service?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('MetricsService', () => {
  it('listens on the host-overlay address once it exists, saying once why it cannot before', async () => {
    dir = mkdtempSync(join(tmpdir(), 'warren-metrics-'));
    const logs: string[] = [];
    service = new MetricsService({ metrics: {}, cniLogFile: join(dir, 'cni.log') }, async () => status, (level, msg, f) => logs.push(`${level} ${msg} ${JSON.stringify(f)}`));
    service.start();
    // 192.0.2.0/24 (TEST-NET-1) is on no interface here: as the overlay address before the first reconcile.
    await service.listen('192.0.2.77');
    await service.listen('192.0.2.77');
    expect(logs).toEqual([expect.stringMatching(/^warn cannot serve metrics yet; .*"address":"192.0.2.77:9477".*EADDRNOTAVAIL/)]);
    await service.listen('127.0.0.1');
    expect(logs[1]).toBe(`info metrics served {"url":"http://127.0.0.1:${METRICS_PORT}/metrics"}`);
    const r = await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`);
    expect(await r.text()).toContain('warren_peers{path="direct"} 0');
  });
});
