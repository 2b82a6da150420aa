// GET /metrics over HTTP, in Prometheus' text format. Listens on one address only (by
// default the node's host-overlay address: reachable from the cluster over the overlay,
// not from the node's public underlay).
import { createServer, type Server } from 'node:http';
import { errorMessage } from '../../lib/errors.js';
import type { Endpoint } from '../nat/stun-address.js';

export async function serveMetrics(at: Endpoint, render: () => Promise<string>, contentType: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET\n');
      return;
    }
    render().then(
      (text) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${errorMessage(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
