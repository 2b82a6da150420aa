// GET /metrics over HTTP, in Prometheus' text format, and GET /targets, Prometheus' HTTP
// service discovery (JSON). Listens on one address only (by default the node's
// host-overlay address: reachable from the cluster over the overlay, not from the node's
// public underlay).
import { createServer, type Server } from 'node:http';
import { errorMessage } from '../../lib/errors.js';
import type { Endpoint } from '../nat/stun-address.js';

export interface Page {
  render: () => Promise<string>;
  contentType: string;
}

export async function serveMetrics(at: Endpoint, pages: Record<string, Page>): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const page = Object.hasOwn(pages, path) ? pages[path] : undefined;
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try ${Object.keys(pages).join(' or ')}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET\n');
      return;
    }
    page.render().then(
      (text) => res.writeHead(200, { 'content-type': page.contentType }).end(req.method === 'HEAD' ? undefined : text),
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
