// 500 ADD/DEL cycles, ten pods at a time: afterwards no veth, OVS port, host-local
// file or extra nftables rule may remain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeState, podResidue } from '../../helpers/node-state.js';
import { NodeFixture } from './fixture.js';

const CYCLES = 500;
const PARALLEL = 10;

let fx: NodeFixture;
beforeAll(async () => {
  fx = await NodeFixture.start();
});
afterAll(async () => {
  await fx.stop();
});

describe('churn', () => {
  it(`survives ${CYCLES} ADD/DEL cycles with zero residue`, async () => {
    const pods = await Promise.all(Array.from({ length: PARALLEL }, () => fx.pod()));
    const config = fx.config();
    // The node-wide pieces (bridge, masquerade rule) exist after the first pod.
    const warm = await fx.cni({ command: 'ADD', config, containerId: 'warm', netns: pods[0]!.path });
    expect(warm.exitCode, warm.stdout).toBe(0);
    expect((await fx.cni({ command: 'DEL', config, containerId: 'warm', netns: pods[0]!.path })).exitCode).toBe(0);
    const baseline = await nodeState(fx.node, fx.ovs, fx.ipamDir);

    const failures: string[] = [];
    for (let round = 0; round < CYCLES / PARALLEL; round++) {
      await Promise.all(pods.map(async (pod, i) => {
        const containerId = `churn-${round}-${i}`;
        const add = await fx.cni({ command: 'ADD', config, containerId, netns: pod.path });
        if (add.exitCode !== 0) failures.push(`ADD ${containerId}: ${add.stdout}`);
        const del = await fx.cni({ command: 'DEL', config, containerId, netns: pod.path });
        if (del.exitCode !== 0) failures.push(`DEL ${containerId}: ${del.stdout}`);
      }));
    }
    expect(failures).toEqual([]);
    const after = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    expect(podResidue(after)).toEqual({ veths: [], ports: [], allocations: [] });
    expect(after).toEqual(baseline);
    expect(after.nftRules).toBe(1);
    for (const pod of pods) {
      const links = JSON.parse((await pod.exec('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[];
      expect(links.map((l) => l.ifname)).toEqual(['lo']);
    }
  }, 600_000);
});
