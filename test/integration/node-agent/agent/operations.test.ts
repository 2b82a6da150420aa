// The agent binary in operation: two nodes behind facing Linux masquerade routers find a
// direct path; restarting an agent drops no established traffic; with etcd down the
// tunnel keeps working; a node removed from etcd is removed by its peer.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentLab, type AgentNode } from '../../../helpers/agent-lab.js';
import { waitFor } from '../../../helpers/sh.js';

let lab: AgentLab;
let a: AgentNode;
let b: AgentNode;

beforeAll(async () => {
  lab = await AgentLab.create();
  a = await lab.addNode('masquerade', 'ops-a');
  b = await lab.addNode('masquerade', 'ops-b');
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') for (const n of [a, b]) console.log(`--- ${n.name} agent log ---\n${lab.log(n).slice(-4000)}`);
});

afterAll(async () => {
  await lab?.destroy();
}, 120_000);

/** Pings every 50 ms until stopped; counts the ones unanswered within 1 s. */
function pingLoop(from: AgentNode, to: string): { stop: () => Promise<{ sent: number; lost: number }> } {
  let running = true;
  let sent = 0;
  let lost = 0;
  const done = (async () => {
    while (running) {
      sent++;
      if (!(await lab.ping(from, to, 1))) lost++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return { stop: async () => { running = false; await done; return { sent, lost }; } };
}

describe('warren-agent', () => {
  it('connects two nodes behind facing Linux masquerade routers directly, within 3 s of both running (bench: p50)', async () => {
    const t0 = Date.now();
    await Promise.all([lab.start(a), lab.start(b)]);
    const started = Date.now();
    await waitFor('a to reach b over the overlay', () => lab.ping(a, b.hostAddress, 1), 30_000, 100);
    const ms = Date.now() - started;
    const status = await lab.status(a);
    console.log(`first packet ${ms} ms after both agents answered (${started - t0} ms to start them); a sees ${JSON.stringify(status.peers)}`);
    expect(ms).toBeLessThan(3000);
    expect(status.peers).toMatchObject([{ node: 'ops-b', path: 'direct' }]);
    expect(status.nat).toMatchObject({ mapping: 'endpoint-independent' });
    expect(status.relay).toBeDefined();
  }, 60_000);

  it('drops no established traffic while an agent restarts', async () => {
    const loop = pingLoop(a, b.hostAddress);
    await lab.stop(a);
    await lab.start(a);
    await waitFor('the restarted agent to see its peer', async () => (await lab.status(a)).peers.length === 1, 20_000);
    const { sent, lost } = await loop.stop();
    console.log(`restart: ${sent} pings, ${lost} lost`);
    expect(sent).toBeGreaterThan(5);
    expect(lost).toBe(0);
  }, 60_000);

  it('keeps the tunnel working while etcd is down', async () => {
    await lab.etcd.stop();
    try {
      const loop = pingLoop(a, b.hostAddress);
      await new Promise((r) => setTimeout(r, 3000));
      const { sent, lost } = await loop.stop();
      expect(sent).toBeGreaterThan(10);
      expect(lost).toBe(0);
      expect((await lab.status(a)).etcd.watcher).not.toBe('connected');
    } finally {
      await lab.etcd.resume();
    }
    await waitFor('the watcher to reconnect', async () => (await lab.status(a)).etcd.watcher === 'connected', 20_000);
  }, 60_000);

  it('removes a node deleted from etcd from its peers', async () => {
    await lab.stop(b);
    await lab.etcd.etcdctl(['del', '/warren/agents/ops-b']);
    await waitFor('a to drop b', async () => (await lab.status(a)).peers.length === 0, 10_000);
    const wg = await a.site.host.exec('wg', ['show', a.ifname, 'peers']);
    expect(wg.stdout.trim()).toBe('');
  }, 30_000);
});
