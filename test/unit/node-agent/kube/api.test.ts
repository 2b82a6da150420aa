// The real @kubernetes/client-node against a local HTTP server standing in for the API
// server: the requests the publisher's two calls make (paths, content type, body), and
// what its errors become.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentConfigError } from '../../../../node-agent/config.js';
import { KubeApiError, kubeErrorLine, nodeView, openNodeApi } from '../../../../node-agent/kube/api.js';

interface Seen { method: string; url: string; contentType: string | undefined; authorization: string | undefined; body: unknown }

const node = {
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: 'edge-7', annotations: { 'warren.dev/paths': 'direct=1,relayed=0,none=0' } },
  spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] },
  status: { conditions: [
    { type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: '2026-11-23T12:00:00Z', lastTransitionTime: '2026-11-23T11:00:00Z' },
    { type: 'NetworkUnavailable', status: 'False', reason: 'WarrenOverlayUp', message: 'up', lastHeartbeatTime: '2026-11-23T11:00:00Z', lastTransitionTime: '2026-11-23T11:00:00Z' },
  ] },
};

let dir: string;
let server: Server;
let seen: Seen[];
let answer: (req: IncomingMessage) => { status: number; body: unknown };

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warren-kube-'));
  seen = [];
  answer = () => ({ status: 200, body: node });
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, contentType: req.headers['content-type'], authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined });
      const a = answer(req);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterEach(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function kubeconfig(serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config',
    // client-node speaks plain HTTP only with TLS verification off.
    `clusters: [{ name: c, cluster: { server: "${serverUrl}", insecure-skip-tls-verify: true } }]`,
    'users: [{ name: u, user: { token: sekrit } }]',
    'contexts: [{ name: x, context: { cluster: c, user: u } }]',
    'current-context: x',
  ].join('\n'));
  return path;
}

describe('openNodeApi', () => {
  it('reads the Node and keeps what the planner compares', async () => {
    const api = await openNodeApi({ enabled: true, kubeconfig: kubeconfig(), publishPodCIDR: true });
    expect(await api.read('edge-7')).toEqual({
      annotations: { 'warren.dev/paths': 'direct=1,relayed=0,none=0' },
      podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'],
      networkCondition: { status: 'False', reason: 'WarrenOverlayUp', message: 'up' },
    });
    expect(seen).toMatchObject([{ method: 'GET', url: '/api/v1/nodes/edge-7', authorization: 'Bearer sekrit' }]);
  });

  it('sends strategic-merge patches to the Node and to its status subresource', async () => {
    const api = await openNodeApi({ enabled: true, kubeconfig: kubeconfig(), publishPodCIDR: true });
    const annotations = { metadata: { annotations: { 'warren.dev/host-address': '10.10.0.7' } } };
    const conditions = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'WarrenWireGuardDown', message: 'down', lastHeartbeatTime: '2026-11-23T12:00:00Z' }] } };
    await api.patch('edge-7', { target: 'node', body: annotations, changes: [] });
    await api.patch('edge-7', { target: 'status', body: conditions, changes: [] });
    expect(seen).toEqual([
      { method: 'PATCH', url: '/api/v1/nodes/edge-7', contentType: 'application/strategic-merge-patch+json', authorization: 'Bearer sekrit', body: annotations },
      { method: 'PATCH', url: '/api/v1/nodes/edge-7/status', contentType: 'application/strategic-merge-patch+json', authorization: 'Bearer sekrit', body: conditions },
    ]);
  });

  it('turns the API server\'s refusal into one line with its status and message', async () => {
    answer = () => ({ status: 403, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
      message: 'nodes "edge-7" is forbidden: User "system:serviceaccount:warren-system:warren-node" cannot patch resource "nodes/status" in API group "" at the cluster scope' } });
    const api = await openNodeApi({ enabled: true, kubeconfig: kubeconfig(), publishPodCIDR: true });
    const err = await api.patch('edge-7', { target: 'status', body: {}, changes: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(403);
    expect((err as KubeApiError).message).toBe('PATCH node edge-7 status: HTTP 403: nodes "edge-7" is forbidden: User "system:serviceaccount:warren-system:warren-node" cannot patch resource "nodes/status" in API group "" at the cluster scope');
  });

  it('says so in one line when nothing answers', async () => {
    const api = await openNodeApi({ enabled: true, kubeconfig: kubeconfig('http://127.0.0.1:1'), publishPodCIDR: true });
    const err = await api.read('edge-7').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).message).toMatch(/^GET node edge-7: .*ECONNREFUSED/);
    expect((err as KubeApiError).message).not.toContain('\n');
  });

  it('refuses a kubeconfig it cannot use, naming the field and the file', async () => {
    await expect(openNodeApi({ enabled: true, kubeconfig: join(dir, 'nothing'), publishPodCIDR: true }))
      .rejects.toThrow(new RegExp(`^kubernetes.kubeconfig "${dir}/nothing" cannot be loaded: ENOENT`));
    const bogus = join(dir, 'bogus');
    writeFileSync(bogus, 'just: some yaml\n');
    const err = await openNodeApi({ enabled: true, kubeconfig: bogus, publishPodCIDR: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentConfigError);
    expect((err as Error).message).toMatch(/^kubernetes.kubeconfig ".*bogus" /);
  });
});

describe('kubeErrorLine', () => {
  it('prefers the Status message, else the body, else the first line of the error', () => {
    expect(kubeErrorLine(404, '{"kind":"Status","message":"nodes \\"x\\" not found"}', 'HTTP-Code: 404\nMessage: ...')).toBe('HTTP 404: nodes "x" not found');
    expect(kubeErrorLine(502, 'Bad Gateway', '')).toBe('HTTP 502: Bad Gateway');
    expect(kubeErrorLine(undefined, undefined, 'request to https://x failed, reason: connect ECONNREFUSED\nmore')).toBe('request to https://x failed, reason: connect ECONNREFUSED');
  });
});

describe('nodeView', () => {
  it('reads a Node without annotations, pod CIDR or conditions (as kubelet first registers it)', () => {
    expect(nodeView({ metadata: { name: 'x' } })).toEqual({ annotations: {}, podCIDR: undefined, podCIDRs: [], networkCondition: undefined });
  });
});
