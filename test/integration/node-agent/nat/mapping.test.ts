// STUN from a host behind each of the NAT lab's six kinds of site, against a real coturn
// on two addresses and two ports: the mapping each kind really gives.
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MappingReport } from '../../../../node-agent/nat/stun-client.js';
import { droppedUnsolicited, NatLab, type NsWorker, type Site, type SiteKind } from '../../../helpers/natlab.js';
import { waitFor } from '../../../helpers/sh.js';
import type { Datagram } from './host-worker.js';

const WORKER = fileURLToPath(new URL('./host-worker.ts', import.meta.url));

const EXPECTED: [SiteKind, MappingReport['behavior']][] = [
  ['public', 'endpoint-independent'],
  ['full-cone', 'endpoint-independent'],
  ['home-router', 'endpoint-independent'],
  ['masquerade', 'endpoint-independent'],
  ['symmetric', 'address-and-port-dependent'],
  ['double-nat', 'endpoint-independent'],
];

describe('NAT lab mapping behaviour (real coturn, real nftables)', () => {
  let lab: NatLab;
  let workers: NsWorker[] = [];

  beforeAll(async () => {
    lab = await NatLab.create();
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    workers = [];
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  async function worker(kind: SiteKind): Promise<{ w: NsWorker; site: Site }> {
    const site = await lab.addSite(kind);
    const w = await lab.startWorker(site.host, WORKER);
    workers.push(w);
    return { w, site };
  }

  it.each(EXPECTED)('%s: %s', async (kind, behavior) => {
    const { w, site } = await worker(kind);
    const port = await w.call<number>('open');
    const report = await w.call<MappingReport>('probe', port, lab.stunServers);
    expect(report.behavior).toBe(behavior);
    expect(report.probes.map((p) => p.mapped.address)).toEqual([site.publicAddress, site.publicAddress, site.publicAddress]);
    const ports = report.probes.map((p) => p.mapped.port);
    if (behavior === 'endpoint-independent') {
      // Plain masquerade keeps a free source port, through both layers of the double NAT.
      expect(ports).toEqual([port, port, port]);
    } else {
      expect(new Set(ports).size).toBe(3);
    }
    console.log(`${kind}: mapped ports ${ports.join(', ')} from ${port}; STUN RTT ${report.probes.map((p) => p.rttMs.toFixed(2)).join(', ')} ms`);
  });

  it('full cone lets a third party in once the mapping exists; the home router drops it', async () => {
    const outsider = await worker('public');
    const from = await outsider.w.call<number>('open');
    for (const [kind, passes] of [['full-cone', true], ['home-router', false]] as const) {
      const inside = await worker(kind);
      const port = await inside.w.call<number>('open');
      const { mapped } = await inside.w.call<{ mapped: { address: string; port: number } }>('stun', port, lab.stunServers[0]);
      const router = inside.site.routers[0]!;
      const dropsBefore = await droppedUnsolicited(router);
      await outsider.w.call('send', from, mapped, `unsolicited to ${kind}`);
      if (passes) {
        const got = await inside.w.call<Datagram>('next', port);
        expect(got).toEqual({ from: { address: outsider.site.publicAddress, port: from }, text: `unsolicited to ${kind}` });
      } else {
        await waitFor('the home router to drop the unsolicited datagram', async () => (await droppedUnsolicited(router)) > dropsBefore);
        expect(await inside.w.call<Datagram[]>('inbox', port)).toEqual([]);
      }
    }
  });
});
