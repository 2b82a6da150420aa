// Warren's dependencies that do more than compute, exercised under a runtime: etcd3 over
// gRPC (put, get, a watch that sees the put) against the etcd in WARREN_CHECK_ETCD, and
// over mutual TLS against WARREN_CHECK_ETCD_TLS (an address, as nodes are configured,
// with WARREN_CHECK_CA, _CERT and _KEY), and @kubernetes/client-node reading a Node from
// the HTTP server in WARREN_CHECK_KUBE. Both
// are imported at the top, so a startup snapshot must hold them. Prints one JSON object:
// each check's "ok" or the first line of its error.
import { readFileSync, writeSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Etcd3 } from 'etcd3';
import { start } from './start.js';

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function etcd(endpoint: string, tls?: { ca: string; cert: string; key: string }): Promise<void> {
  const credentials = tls && { rootCertificate: readFileSync(tls.ca), certChain: readFileSync(tls.cert), privateKey: readFileSync(tls.key) };
  const client = new Etcd3({ hosts: endpoint, credentials });
  try {
    const key = `warren-runtime-check-${process.pid}`;
    // A first read says why a connection cannot be made; a watch would only wait.
    await within(client.get(key).string(), 5000, 'first get');
    const watcher = await within(client.watch().key(key).create(), 5000, 'watch');
    const seen = new Promise<string>((resolve) => watcher.on('put', (kv) => resolve(kv.value.toString())));
    await within(client.put(key).value('put-by-check').exec(), 5000, 'put');
    const got = await within(client.get(key).string(), 5000, 'get');
    if (got !== 'put-by-check') throw new Error(`get returned ${JSON.stringify(got)}`);
    const watched = await within(seen, 5000, 'watch event');
    if (watched !== 'put-by-check') throw new Error(`watch saw ${JSON.stringify(watched)}`);
    await watcher.cancel();
  } finally {
    client.close();
  }
}

async function kube(server: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'check', server, skipTLSVerify: true }],
    users: [{ name: 'check', token: 'check' }],
    contexts: [{ name: 'check', cluster: 'check', user: 'check' }],
    currentContext: 'check',
  });
  const node = await within(kc.makeApiClient(CoreV1Api).readNode({ name: 'check-node' }), 5000, 'GET node');
  if (node.metadata?.name !== 'check-node') throw new Error(`read a node named ${JSON.stringify(node.metadata?.name)}`);
}

async function outcome(check: () => Promise<void>): Promise<string> {
  try {
    await check();
    return 'ok';
  } catch (err) {
    return String(err instanceof Error ? err.message : err).split('\n')[0]!;
  }
}

start(() => {
  void (async () => {
    const result = {
      etcd: await outcome(() => etcd(process.env.WARREN_CHECK_ETCD ?? '')),
      etcdTls: await outcome(() => etcd(process.env.WARREN_CHECK_ETCD_TLS ?? '', {
        ca: process.env.WARREN_CHECK_CA ?? '', cert: process.env.WARREN_CHECK_CERT ?? '', key: process.env.WARREN_CHECK_KEY ?? '',
      })),
      kube: await outcome(() => kube(process.env.WARREN_CHECK_KUBE ?? '')),
    };
    writeSync(1, JSON.stringify(result));
    // gRPC's channels may keep the loop alive after close.
    process.exit(0);
  })();
});
