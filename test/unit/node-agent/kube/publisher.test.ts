// The Node publisher's loop on a fake clock with a scripted API: what it reads and sends,
// when it stays quiet, how it backs off. The real client against an HTTP server is in
// api.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { KubeApiError, type NodeApi } from '../../../../node-agent/kube/api.js';
import { RESYNC_MS, TICK_MS } from '../../../../node-agent/kube/knobs.js';
import type { DesiredNode, NodePatch, NodeView } from '../../../../node-agent/kube/node-plan.js';
import { NodePublisher, roundDue } from '../../../../node-agent/kube/publisher.js';
import { FakeTimers } from '../nat/fake-net.js';

/** An API server holding one Node, applying patches the way a strategic merge would for these fields. */
class FakeApi implements NodeApi {
  readonly server = 'https://10.96.0.1:443';
  calls: string[] = [];
  /** Errors for the next calls, in order (undefined: answer). */
  failures: (Error | undefined)[] = [];
  node: NodeView = { annotations: {}, podCIDRs: [] };

  private fail(call: string): void {
    this.calls.push(call);
    const err = this.failures.shift();
    if (err) throw err;
  }

  async read(name: string): Promise<NodeView> {
    this.fail(`GET ${name}`);
    return structuredClone(this.node);
  }

  async patch(name: string, p: NodePatch): Promise<void> {
    this.fail(`PATCH ${name}${p.target === 'status' ? '/status' : ''}`);
    const b = p.body as { metadata?: { annotations: Record<string, string> }; spec?: { podCIDR: string; podCIDRs: string[] }; status?: { conditions: { status: string; reason: string; message: string }[] } };
    if (b.metadata) Object.assign(this.node.annotations, b.metadata.annotations);
    if (b.spec) Object.assign(this.node, b.spec);
    if (b.status) this.node.networkCondition = b.status.conditions[0];
  }
}

const up = { unavailable: false, reason: 'WarrenOverlayUp', message: 'up' };
let publisher: NodePublisher | undefined;
afterEach(async () => {
  publisher?.stop();
  await publisher?.stopped();
  publisher = undefined;
});

function setup(initial: DesiredNode = { condition: up, annotations: { 'warren.dev/paths': 'direct=1,relayed=0,none=0' }, podCIDR: '10.244.7.0/24' }) {
  const timers = new FakeTimers();
  const api = new FakeApi();
  const logs: string[] = [];
  let desired = initial;
  const p = new NodePublisher({
    api, node: 'edge-7', timers,
    desired: () => desired,
    now: () => new Date(1_700_000_000_000 + timers.now()),
    log: (level, msg, fields) => logs.push(`${level} ${msg}${fields?.error ? `: ${String(fields.error)}` : ''}`),
    backoff: { initialMs: 1000, maxMs: 8000, random: () => 0 },
  });
  publisher = p;
  return { timers, api, logs, p, set: (d: DesiredNode) => (desired = d) };
}

describe('NodePublisher', () => {
  it('reads the Node, patches what differs, then stays quiet while nothing changes', async () => {
    const { timers, api, p } = setup();
    p.start();
    await timers.advance(0);
    expect(api.calls).toEqual(['GET edge-7', 'PATCH edge-7', 'PATCH edge-7/status']);
    expect(p.status()).toMatchObject({ node: 'edge-7', server: 'https://10.96.0.1:443', state: 'ok', condition: { status: 'False', reason: 'WarrenOverlayUp' }, failures: 0, lastPatch: ['NetworkUnavailable=False (WarrenOverlayUp)'] });
    await timers.advance(RESYNC_MS - 1);
    expect(api.calls).toHaveLength(3);
  });

  it('reads again every RESYNC_MS, and repairs what someone else changed', async () => {
    const { timers, api, p } = setup();
    p.start();
    await timers.advance(0);
    api.node.annotations['warren.dev/paths'] = 'tampered';
    await timers.advance(RESYNC_MS);
    expect(api.calls.slice(3)).toEqual(['GET edge-7', 'PATCH edge-7']);
    expect(api.node.annotations['warren.dev/paths']).toBe('direct=1,relayed=0,none=0');
  });

  it('acts on a change at the next tick, or at once when poked', async () => {
    const { timers, api, p, set } = setup();
    p.start();
    await timers.advance(0);
    set({ condition: up, annotations: { 'warren.dev/paths': 'direct=2,relayed=0,none=0' }, podCIDR: '10.244.7.0/24' });
    await timers.advance(TICK_MS);
    expect(api.calls.slice(3)).toEqual(['GET edge-7', 'PATCH edge-7']);
    set({ condition: { unavailable: true, reason: 'WarrenWireGuardDown', message: 'down' }, annotations: { 'warren.dev/paths': 'direct=2,relayed=0,none=0' }, podCIDR: '10.244.7.0/24' });
    p.poke();
    await timers.advance(0);
    expect(api.calls.slice(5)).toEqual(['GET edge-7', 'PATCH edge-7/status']);
    expect(api.node.networkCondition).toMatchObject({ status: 'True', reason: 'WarrenWireGuardDown' });
  });

  it('logs one line per failed round, backs off (bounded), never throws, and says when the API answers again', async () => {
    const { timers, api, logs, p } = setup();
    const forbidden = new KubeApiError('PATCH node edge-7 status: HTTP 403: nodes "edge-7" is forbidden', 403);
    api.failures = [new KubeApiError('GET node edge-7: connect ECONNREFUSED 10.96.0.1:443', undefined), undefined, undefined, forbidden];
    p.start();
    await timers.advance(0);
    expect(p.status()).toMatchObject({ state: 'error', failures: 1, lastError: 'GET node edge-7: connect ECONNREFUSED 10.96.0.1:443' });
    // Pokes do not cut a backoff short.
    p.poke();
    await timers.advance(499);
    expect(api.calls).toEqual(['GET edge-7']);
    await timers.advance(1);
    expect(api.calls).toEqual(['GET edge-7', 'GET edge-7', 'PATCH edge-7', 'PATCH edge-7/status']);
    expect(p.status()).toMatchObject({ state: 'error', failures: 2 });
    // Random 0: half of 1 s, 2 s, 4 s, 8 s, 8 s...
    await timers.advance(999);
    expect(p.status().state).toBe('error');
    await timers.advance(1);
    expect(p.status()).toMatchObject({ state: 'ok', failures: 0, lastError: undefined });
    expect(logs.filter((l) => l.startsWith('warn'))).toEqual([
      'warn keeping the Node object true: GET node edge-7: connect ECONNREFUSED 10.96.0.1:443',
      'warn keeping the Node object true: PATCH node edge-7 status: HTTP 403: nodes "edge-7" is forbidden',
    ]);
    expect(logs).toContain('info the Kubernetes API answers again');
  });

  it('caps the backoff', async () => {
    const { timers, api, p } = setup();
    api.failures = Array.from({ length: 20 }, () => new KubeApiError('GET node edge-7: HTTP 404: nodes "edge-7" not found', 404));
    p.start();
    await timers.advance(60_000);
    // 0, then 0.5, 1, 2, 4, 4, 4... s after each: 1 + 4 + (60 - 7.5) / 4 attempts.
    expect(api.calls.length).toBe(18);
  });

  it('warns once about a Node that has another pod CIDR, and never overwrites it', async () => {
    const { timers, api, logs, p } = setup();
    api.node = { annotations: {}, podCIDR: '10.244.99.0/24', podCIDRs: ['10.244.99.0/24'] };
    p.start();
    await timers.advance(3 * RESYNC_MS);
    expect(logs.filter((l) => l.includes('pod CIDR'))).toEqual([
      'warn the Node has spec.podCIDR 10.244.99.0/24, node.json says 10.244.7.0/24: left as it is (a Node\'s pod CIDR cannot change); Warren routes 10.244.7.0/24 to this node',
    ]);
    expect(api.node.podCIDR).toBe('10.244.99.0/24');
    expect(p.status().podCIDRConflict).toBe('the Node has spec.podCIDR 10.244.99.0/24, node.json says 10.244.7.0/24');
  });

  it('writes once for an agent about to exit, and reports a failure instead of throwing', async () => {
    const { api, p, logs } = setup();
    await p.publishOnce({ condition: { unavailable: true, reason: 'WarrenNodeFileMissing', message: 'no node.json' }, annotations: {} });
    expect(api.node.networkCondition).toMatchObject({ status: 'True', reason: 'WarrenNodeFileMissing' });
    api.failures = [new KubeApiError('GET node edge-7: timeout', undefined)];
    await p.publishOnce({ condition: up, annotations: {} });
    expect(logs.at(-1)).toBe('warn keeping the Node object true: GET node edge-7: timeout');
  });

  it('shows the condition the Node has while the agent does not know yet', async () => {
    const { timers, api, p } = setup({ annotations: {} });
    api.node.networkCondition = { status: 'True', reason: 'NoRouteCreated', message: 'Node created without a route' };
    p.start();
    await timers.advance(0);
    expect(api.calls).toEqual(['GET edge-7']);
    expect(p.status().condition).toEqual({ status: 'True', reason: 'NoRouteCreated' });
  });
});

describe('roundDue', () => {
  it('is due first, after a failure, on a change, and once the resync time has passed', () => {
    expect(roundDue(undefined, 'a', 0)).toBe(true);
    expect(roundDue({ key: 'a', at: 0, ok: false }, 'a', 1)).toBe(true);
    expect(roundDue({ key: 'a', at: 0, ok: true }, 'b', 1)).toBe(true);
    expect(roundDue({ key: 'a', at: 0, ok: true }, 'a', RESYNC_MS - 1)).toBe(false);
    expect(roundDue({ key: 'a', at: 0, ok: true }, 'a', RESYNC_MS)).toBe(true);
  });
});
