// The port share's table on a real nftables, and the prober's refusal to speak for WGPORT
// without it. A public host (no NAT) makes the rewrite visible on its own: coturn sees
// the host's address with WGPORT when the table is there.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WgPortMapping } from '../../../../node-agent/traversal/prober.js';
import { disablePortShare, enablePortShare, portShareInSync, readPortShareCounters } from '../../../../node-agent/traversal/port-share.js';
import { nftJsonIfExists } from '../../../../lib/nft.js';
import { NatLab, type NsWorker, type Site } from '../../../helpers/natlab.js';
import { PROBE_PORT, WG_PORT } from './wg-hosts.js';

const WORKER = fileURLToPath(new URL('./prober-worker.ts', import.meta.url));
const share = { wgPort: WG_PORT, probePort: PROBE_PORT };

describe('port share table', () => {
  let lab: NatLab | undefined;
  let site: Site;
  let w: NsWorker;

  beforeEach(async () => {
    lab = await NatLab.create();
    site = await lab.addSite('public');
    w = await lab.startWorker(site.host, WORKER);
  });
  afterEach(async () => {
    await lab?.destroy();
    lab = undefined;
  });

  const tables = async (): Promise<string> => (await site.host.runner('nft', ['list', 'tables'])).stdout;
  const listed = () => nftJsonIfExists(site.host.runner, ['list', 'table', 'inet', 'warren_probe']);

  it('is created, kept when in sync, replaced when different or tampered with, and removed without a trace', async () => {
    let t = performance.now();
    expect(await enablePortShare(site.host.runner, share)).toBe('created');
    const createMs = performance.now() - t;
    expect(portShareInSync(share, await listed())).toBe(true);
    const handle = async (): Promise<number> => ((await listed()) as { nftables: { table?: { handle: number } }[] }).nftables.find((o) => o.table)!.table!.handle;
    const first = await handle();
    t = performance.now();
    expect(await enablePortShare(site.host.runner, share)).toBe('unchanged');
    const unchangedMs = performance.now() - t;
    expect(await handle()).toBe(first); // not even replaced by an identical table
    console.info(`[traversal] enablePortShare: create ${createMs.toFixed(1)} ms, in sync ${unchangedMs.toFixed(1)} ms`);

    // Another probe port: the same table, rewritten in one transaction.
    const moved = { ...share, probePort: PROBE_PORT + 1 };
    expect(await enablePortShare(site.host.runner, moved)).toBe('replaced');
    expect(portShareInSync(moved, await listed())).toBe(true);
    expect(portShareInSync(share, await listed())).toBe(false);

    // A rule added behind the agent's back is not adopted: the whole table is put back.
    await site.host.runner('nft', ['add', 'rule', 'inet', 'warren_probe', 'prerouting', 'udp', 'dport', String(WG_PORT), 'drop']);
    expect(portShareInSync(moved, await listed())).toBe(false);
    expect(await enablePortShare(site.host.runner, moved)).toBe('replaced');
    expect(await enablePortShare(site.host.runner, moved)).toBe('unchanged');

    expect(await disablePortShare(site.host.runner)).toBe('removed');
    expect(await tables()).not.toContain('warren_probe');
    expect(await listed()).toBeUndefined();
    expect(await readPortShareCounters(site.host.runner)).toBeUndefined();
    expect(await disablePortShare(site.host.runner)).toBe('absent');
  });

  it('the prober refuses to report a mapping without the rewrite, and with it coturn sees WGPORT', async () => {
    expect(await w.call<number>('open', WG_PORT, PROBE_PORT)).toBe(PROBE_PORT);
    await expect(w.call('check')).rejects.toMatchObject({ code: 'PORT_SHARE_INACTIVE', message: expect.stringContaining(`left from port ${PROBE_PORT}`) });
    await expect(w.call('reflexive', lab!.stunServers)).rejects.toMatchObject({ code: 'PORT_SHARE_INACTIVE' });

    // A table for another probe port does not count either.
    await enablePortShare(site.host.runner, { ...share, probePort: PROBE_PORT + 1 });
    await expect(w.call('check')).rejects.toMatchObject({ code: 'PORT_SHARE_INACTIVE' });

    await enablePortShare(site.host.runner, share);
    const m = await w.call<WgPortMapping>('reflexive', lab!.stunServers);
    expect(m.failed).toEqual([]);
    expect(m.behavior).toBe('endpoint-independent');
    expect(m.probes.map((p) => p.mapped)).toEqual(lab!.stunServers.map(() => ({ address: site.hostAddress, port: WG_PORT })));

    const checkMs = await w.call<number[]>('timeChecks', 50);
    console.info(`[traversal] loopback check of the rewrite: median ${[...checkMs].sort((a, b) => a - b)[25]!.toFixed(2)} ms over 50`);

    // Removing the table is noticed on the next round.
    await disablePortShare(site.host.runner);
    await expect(w.call('reflexive', lab!.stunServers)).rejects.toMatchObject({ code: 'PORT_SHARE_INACTIVE' });
  });
});
