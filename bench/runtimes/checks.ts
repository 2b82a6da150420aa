// Whether Warren's dependencies work under each runtime, against the real thing: etcds
// started for the check (etcd3 over gRPC: put, get, watch; plain and mutual TLS), an HTTP server answering as
// the Kubernetes API would (client-node), and the plugin's real ADD and DEL on a private
// OVS in a node's namespace, as bench/cni.ts runs it.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import { EtcdServer } from '../../test/helpers/etcd.js';
import { Netns } from '../../test/helpers/netns.js';
import { makePki } from '../../test/helpers/pki.js';
import { startOvs } from '../../test/helpers/ovs.js';
import { timedSpawn } from '../timed-spawn.js';

export type Outcome = string; // "ok ..." or the first line of what went wrong

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

async function kubeServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.startsWith('/api/v1/nodes/check-node')) res.end(JSON.stringify({ kind: 'Node', apiVersion: 'v1', metadata: { name: 'check-node' } }));
    else res.writeHead(404).end(JSON.stringify({ kind: 'Status', code: 404, message: `no ${req.url}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}` };
}

/** etcd3 and client-node under each executable built from bench/runtimes/deps.ts. */
export type DependencyOutcomes = { etcd: Outcome; etcdTls: Outcome; kube: Outcome };

export async function checkDependencies(executables: Map<string, string>, configgens: Map<string, string>): Promise<{
  deps: Map<string, DependencyOutcomes>;
  configgen: Map<string, Outcome>;
}> {
  const results = new Map<string, DependencyOutcomes>();
  const pki = await makePki();
  const etcd = await EtcdServer.start();
  const etcdTls = await EtcdServer.start({ tls: { caFile: pki.ca, certFile: pki.serverCert, keyFile: pki.serverKey } });
  const kube = await kubeServer();
  const work = mkdtempSync(join(tmpdir(), 'warren-runtimes-'));
  try {
    const env = { WARREN_CHECK_ETCD: etcd.endpoint, WARREN_CHECK_ETCD_TLS: etcdTls.endpoint, WARREN_CHECK_CA: pki.ca,
      WARREN_CHECK_CERT: pki.clientCert, WARREN_CHECK_KEY: pki.clientKey, WARREN_CHECK_KUBE: kube.url };
    for (const [runtime, file] of executables) {
      // From another directory, as on a node: nothing may be read from the build's tree.
      const r = await timedSpawn('/usr/bin/env', env, '', ['-C', '/', file]);
      try {
        results.set(runtime, JSON.parse(r.out) as DependencyOutcomes);
      } catch {
        const why = `exit ${r.code}: ${firstLine(r.err) || firstLine(r.out)}`;
        results.set(runtime, { etcd: why, etcdTls: why, kube: why });
      }
    }
    return { deps: results, configgen: await allocateWith(configgens, etcd.endpoint, work) };
  } finally {
    kube.server.close();
    await etcd.destroy();
    await etcdTls.destroy();
    rmSync(work, { recursive: true, force: true });
    rmSync(pki.dir, { recursive: true, force: true });
  }
}

/** Warren's own etcd code under each runtime: warren-configgen (a link to the one executable) claims a subnet. */
async function allocateWith(executables: Map<string, string>, endpoint: string, work: string): Promise<Map<string, Outcome>> {
  const results = new Map<string, Outcome>();
  let n = 0;
  for (const [runtime, file] of executables) {
    const dir = join(work, `configgen${n++}`);
    const r = await timedSpawn('/usr/bin/env', {}, '', ['-C', '/', file, '--pod-cidr', '10.244.0.0/16', '--node-bits', '8', '--node-name', `check${n}`,
      '--etcd-endpoints', endpoint, '--etcd-timeout', '10s', '--state-dir', dir, '--cni-conf-dir', dir, '--mtu', '1400']);
    try {
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${firstLine(r.err) || firstLine(r.out)}`);
      const node = JSON.parse(readFileSync(join(dir, 'node.json'), 'utf8')) as { podSubnet?: string };
      results.set(runtime, `ok (${node.podSubnet ?? JSON.stringify(node).slice(0, 60)})`);
    } catch (err) {
      results.set(runtime, errorMessage(err));
    }
  }
  return results;
}

/**
 * One ADD and its DEL by each plugin executable, in a node's namespace with a private OVS;
 * then, for those that worked, `cycles` more ADD/DEL pairs interleaved with the Go bridge
 * plugin's (host-local and masquerading both), each spawned through `ip netns exec` alike.
 */
export async function checkCniAddDel(executables: Map<string, string>, cycles: number): Promise<{ outcomes: Map<string, Outcome>; addMs: Map<string, number[]> }> {
  const outcomes = new Map<string, Outcome>();
  const addMs = new Map<string, number[]>();
  const work = mkdtempSync(join(tmpdir(), 'warren-runtimes-'));
  const node = await Netns.create('rnode');
  const pod = await Netns.create('rpod');
  try {
    const ovs = await startOvs(node);
    try {
      const ipam = (dir: string, subnet: string) => ({ type: 'host-local', dataDir: join(work, dir), ranges: [[{ subnet }]] });
      const warrenConf = JSON.stringify({ cniVersion: '1.0.0', name: 'rwarren', type: 'warren', mtu: 1400, podCIDR: '10.244.0.0/16', ovsdb: ovs.db, ipam: ipam('w', '10.244.1.0/24') });
      const bridgeConf = JSON.stringify({ cniVersion: '1.0.0', name: 'rbridge', type: 'bridge', bridge: 'rbench0', mtu: 1400, isGateway: true, ipMasq: true, ipam: ipam('b', '10.245.1.0/24') });
      const plugins = [...executables].map(([label, file], i) => ({ label, file, conf: warrenConf, ifname: `eth${i}` }));
      const call = (p: (typeof plugins)[number], command: string, id: string) =>
        timedSpawn('ip', { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: p.ifname, CNI_PATH: '/usr/lib/cni' }, p.conf, ['netns', 'exec', node.name, p.file]);
      const cycle = async (p: (typeof plugins)[number], id: string): Promise<{ ms: number; address: string }> => {
        const add = await call(p, 'ADD', id);
        if (add.code !== 0) throw new Error(`ADD exit ${add.code}: ${firstLine(add.out) || firstLine(add.err)}`);
        const address = (JSON.parse(add.out) as { ips?: { address: string }[] }).ips?.[0]?.address;
        if (!address) throw new Error(`ADD answered no address: ${firstLine(add.out)}`);
        const del = await call(p, 'DEL', id);
        if (del.code !== 0) throw new Error(`DEL exit ${del.code}: ${firstLine(del.out) || firstLine(del.err)}`);
        return { ms: add.ms, address };
      };
      const working = [{ label: 'Go bridge plugin', file: '/usr/lib/cni/bridge', conf: bridgeConf, ifname: 'ethb' }];
      for (const p of plugins) {
        try {
          outcomes.set(p.label, `ok (${(await cycle(p, 'first')).address})`);
          working.push(p);
        } catch (err) {
          outcomes.set(p.label, errorMessage(err));
        }
      }
      for (let i = 0; i < cycles; i++) {
        for (let j = 0; j < working.length; j++) {
          const p = working[(i + j) % working.length]!;
          const { ms } = await cycle(p, `cycle${i}`);
          addMs.set(p.label, [...(addMs.get(p.label) ?? []), ms]);
        }
      }
    } finally {
      await ovs.stop();
    }
  } finally {
    await pod.destroy();
    await node.destroy();
    rmSync(work, { recursive: true, force: true });
  }
  return { outcomes, addMs };
}
