// The WireGuard data plane on real namespaces with real wireguard-go: three nodes on
// one underlay bridge, a pod behind each. Every test builds its own cluster and
// afterEach tears it down, so a failed assertion leaks no namespace or daemon.
import { afterEach, describe, expect, it } from 'vitest';
import { isEmpty } from '../../../../node-agent/overlay/diff.js';
import { readWgDump } from '../../../../node-agent/wireguard/dump.js';
import { readStatus } from '../../../../node-agent/wireguard/status.js';
import { WireguardGoBackend } from '../../../../node-agent/wireguard/wireguard-go-backend.js';
import { run, waitFor } from '../../../helpers/sh.js';
import { iperfClient } from '../../../helpers/iperf.js';
import { Cluster, ping, pingCounts, pingOk, type EmulatedNode } from './cluster.js';
import { isRunning } from '../../../../lib/pid.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

async function up(): Promise<Cluster> {
  cluster = await Cluster.create(['a', 'b', 'c']);
  for (const n of cluster.nodes) await cluster.reconcile(n);
  return cluster;
}

const ms = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;

async function routesOf(n: EmulatedNode): Promise<string[]> {
  const routes = JSON.parse(await run('ip', ['-n', n.ns.name, '-json', 'route', 'show', 'table', 'main', 'proto', '87'])) as { type?: string; dst: string; dev?: string }[];
  return routes.map((r) => `${r.type ?? 'unicast'} ${r.dst} ${r.dev ?? ''}`.trim()).sort();
}

describe('WireGuard overlay on emulated nodes', () => {
  it('connects nodes and pods, and re-applying the same state changes nothing', async () => {
    cluster = await Cluster.create(['a', 'b', 'c']);
    const [a, b, c] = cluster.nodes as [EmulatedNode, EmulatedNode, EmulatedNode];
    const timings: string[] = [];
    for (const n of cluster.nodes) {
      let t = process.hrtime.bigint();
      const backend = await cluster.startAgent(n);
      expect(backend.kind).toBe('wireguard-go');
      const openMs = ms(t);
      t = process.hrtime.bigint();
      expect(await backend.ensureInterface()).toBe('created');
      cluster.trackDaemon(backend);
      const startMs = ms(t);
      t = process.hrtime.bigint();
      const r = await cluster.reconcile(n);
      timings.push(`${n.name}: choose backend ${openMs.toFixed(1)} ms, wireguard-go start ${startMs.toFixed(1)} ms, first apply ${ms(t).toFixed(1)} ms`);
      expect(r.ensured).toBe('adopted');
      expect(r.rejected).toEqual([]);
      expect(r.changes.setPeers).toHaveLength(2);
    }
    const t = process.hrtime.bigint();
    await waitFor('a to ping c over the overlay', () => pingOk(a.ns, c.hostAddress), 20_000, 0);
    timings.push(`apply to first ping a->c: ${ms(t).toFixed(1)} ms`);
    console.info(`[wireguard] ${timings.join('; ')}`);

    await ping(a.ns, b.hostAddress, 3);
    await ping(c.ns, a.hostAddress, 3);
    await ping(a.pod, c.podAddress, 3);
    await ping(b.pod, a.podAddress, 3);

    // Pod to pod keeps the pod's own address: c's pod sees a's pod as the source (TCP, not only ping).
    const server = cluster.spawnIn(c.pod, process.execPath, ['-e', "const srv = require('net').createServer((s) => { s.end(s.remoteAddress); srv.close(); }).listen(7000, '0.0.0.0', () => console.log('listening'))"]);
    await waitFor('the echo server in c\'s pod', () => server.output().includes('listening'));
    const seen = await a.pod.runner(process.execPath, ['-e', `const s = require('net').connect(7000, '${c.podAddress}'); s.pipe(process.stdout);`]);
    expect(seen.stdout).toBe(a.podAddress);

    // Allowed IPs, routes and addresses as planned.
    const dump = await readWgDump(a.ns.runner, a.ifname);
    expect(dump.iface).toMatchObject({ publicKey: a.key.publicKey, listenPort: 51820 });
    expect(dump.peers.find((p) => p.publicKey === c.key.publicKey)!.allowedIps.sort()).toEqual(['10.10.0.3/32', '10.244.3.0/24']);
    expect(await routesOf(a)).toEqual([`unicast 10.244.2.0/24 ${a.ifname}`, `unicast 10.244.3.0/24 ${a.ifname}`, 'unreachable 10.244.0.0/16']);
    // Traffic to a pod subnet no node owns is refused here, not sent out unencrypted.
    const stray = await a.pod.runner('ping', ['-n', '-c', '1', '-W', '1', '10.244.77.2'], { allowFailure: true });
    expect(stray.exitCode).not.toBe(0);
    expect(stray.stdout).toMatch(/Unreachable/i);

    for (const n of cluster.nodes) {
      const again = await cluster.reconcile(n);
      expect(again.ensured).toBe('adopted');
      expect(isEmpty(again.changes), JSON.stringify(again.changes)).toBe(true);
    }
  });

  it('reports a recent handshake and growing byte counters', async () => {
    const { nodes: [a, , c] } = await up();
    await waitFor('a to ping c', () => pingOk(a!.ns, c!.hostAddress), 20_000, 0);
    const before = (await readStatus(a!.ns.runner, a!.ifname)).find((p) => p.publicKey === c!.key.publicKey)!;
    expect(before.endpoint).toBe('192.0.2.3:51820');
    expect(before.latestHandshake).toBeInstanceOf(Date);
    expect(Math.abs(Date.now() - before.latestHandshake!.getTime())).toBeLessThan(60_000);
    expect(before.rxBytes).toBeGreaterThan(0);
    expect(before.txBytes).toBeGreaterThan(0);
    await ping(a!.ns, c!.hostAddress, 5);
    const after = (await readStatus(a!.ns.runner, a!.ifname)).find((p) => p.publicKey === c!.key.publicKey)!;
    expect(after.rxBytes).toBeGreaterThan(before.rxBytes);
    expect(after.txBytes).toBeGreaterThan(before.txBytes);
    // b never talked to a's pod or a: its handshake with c has not happened.
    const bc = (await readStatus(cluster!.node('b').ns.runner, cluster!.node('b').ifname)).find((p) => p.publicKey === c!.key.publicKey)!;
    expect(bc.latestHandshake).toBeUndefined();
  });

  it('removes a node that left: its peer, allowed IPs and route go, the others stay', async () => {
    const { nodes: [a, b, c] } = await up();
    await waitFor('a to ping c', () => pingOk(a!.ns, c!.hostAddress), 20_000, 0);
    const r = await cluster!.reconcile(a!, [a!, b!]);
    expect(r.changes.removePeers).toEqual([c!.key.publicKey]);
    expect(r.changes.removeRoutes.map((x) => x.dst)).toEqual(['10.244.3.0/24']);
    const dump = await readWgDump(a!.ns.runner, a!.ifname);
    expect(dump.peers.map((p) => p.publicKey)).toEqual([b!.key.publicKey]);
    expect(await routesOf(a!)).toEqual([`unicast 10.244.2.0/24 ${a!.ifname}`, 'unreachable 10.244.0.0/16']);
    expect(await pingOk(a!.ns, c!.hostAddress)).toBe(false);
    expect(await pingOk(a!.pod, c!.podAddress)).toBe(false);
    await ping(a!.ns, b!.hostAddress);
    expect(isEmpty((await cluster!.reconcile(a!, [a!, b!])).changes)).toBe(true);
  });

  it('a crashed agent process leaves wireguard-go serving; the next one adopts it without losing a ping', async () => {
    cluster = await Cluster.create(['a', 'b', 'c']);
    const [a, , c] = cluster.nodes as [EmulatedNode, EmulatedNode, EmulatedNode];
    const daemons: number[] = [];
    for (const n of cluster.nodes) {
      const first = await cluster.agentProcess(n);
      expect(first.ensured).toBe('created');
      daemons.push(first.pid!);
    }
    // Every agent is gone (SIGKILL); their daemons and the overlay are not.
    expect(daemons.every(isRunning)).toBe(true);
    await waitFor('a to ping c with no agent running', () => pingOk(a.ns, c.hostAddress), 20_000, 0);

    const pinger = cluster.spawnIn(a.ns, 'ping', ['-n', '-c', '400', '-i', '0.01', '-W', '1', c.hostAddress]);
    await waitFor('the first reply', () => /bytes from/.test(pinger.output()));
    let pingerDone = false;
    void pinger.exited.then(() => (pingerDone = true));
    const t = process.hrtime.bigint();
    const second = await cluster.agentProcess(a);
    const restartMs = ms(t);
    expect(pingerDone, 'the restart finished while the ping ran').toBe(false);
    expect(second.ensured).toBe('adopted');
    expect(second.pid).toBeUndefined(); // it started nothing
    expect(isEmpty(second.changes)).toBe(true);
    expect(isRunning(daemons[0]!)).toBe(true);

    expect(await pinger.exited).toBe(0);
    const counts = pingCounts(pinger.output());
    console.info(`[wireguard] agent process restart (node start, adopt, reconcile, exit): ${restartMs.toFixed(1)} ms; pings ${counts.received}/${counts.transmitted}`);
    expect(counts.transmitted).toBe(400);
    expect(counts.received).toBe(counts.transmitted);

    // The same inside one process: a new backend object adopts, changes nothing.
    const backend = await cluster.startAgent(a);
    const r = await cluster.reconcile(a);
    expect(r.ensured).toBe('adopted');
    expect((backend as WireguardGoBackend).pid).toBeUndefined();
    expect(isEmpty(r.changes)).toBe(true);
  });

  it('brings back a killed wireguard-go on the kept interface', async () => {
    const { nodes: [a, , c] } = await up();
    await waitFor('a to ping c', () => pingOk(a!.ns, c!.hostAddress), 20_000, 0);
    const pid = (a!.backend as WireguardGoBackend).pid!;
    expect(isRunning(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    await waitFor('wireguard-go to die', () => !isRunning(pid));

    // The TUN, its address and its routes stay: pod traffic is dropped, not leaked.
    // (The kernel reports the lost carrier through linkwatch, up to a second late.)
    const link = async () => (JSON.parse(await run('ip', ['-n', a!.ns.name, '-json', 'addr', 'show', 'dev', a!.ifname])) as { flags: string[]; addr_info: { local: string }[] }[])[0]!;
    await waitFor('the TUN to lose its carrier', async () => (await link()).flags.includes('NO-CARRIER'));
    expect((await link()).addr_info.map((x) => x.local)).toContain(a!.hostAddress);
    expect(await routesOf(a!)).toContain(`unicast 10.244.3.0/24 ${a!.ifname}`);
    expect(await pingOk(a!.ns, c!.hostAddress)).toBe(false);

    const t = process.hrtime.bigint();
    const r = await cluster!.reconcile(a!);
    const reconcileMs = ms(t);
    expect(r.ensured).toBe('restarted');
    expect(r.changes.setPrivateKey).toBe(true);
    expect(r.changes.setPeers).toHaveLength(2);
    expect(r.changes.addRoutes).toEqual([]);
    expect((a!.backend as WireguardGoBackend).pid).not.toBe(pid);
    const t2 = process.hrtime.bigint();
    await waitFor('a to ping c again', () => pingOk(a!.ns, c!.hostAddress), 20_000, 0);
    console.info(`[wireguard] restart after kill: reconcile ${reconcileMs.toFixed(1)} ms, then first ping ${ms(t2).toFixed(1)} ms`);
    await ping(a!.pod, c!.podAddress, 3);
    expect(isEmpty((await cluster!.reconcile(a!)).changes)).toBe(true);
  });

  it('measures TCP throughput through the overlay against the underlay (information, not a bound)', async () => {
    const { nodes: [a, , c] } = await up();
    await waitFor('a to ping c', () => pingOk(a!.ns, c!.hostAddress), 20_000, 0);
    const server = cluster!.spawnIn(c!.ns, 'iperf3', ['-s', '-p', '5201']);
    await waitFor('iperf3 to listen', async () => (await c!.ns.runner('ss', ['-Hltn', 'sport = :5201'])).stdout.trim() !== '');
    const gbps = async (target: string) => (await iperfClient(a!.ns.runner, target)).gbps;
    const overlay = await gbps(c!.hostAddress);
    const underlay = await gbps(c!.underlayAddress);
    console.info(`[wireguard] iperf3 TCP a->c, 1 stream, 3 s: overlay ${overlay.toFixed(2)} Gbit/s, underlay ${underlay.toFixed(2)} Gbit/s`);
    expect(overlay).toBeGreaterThan(0);
    expect(underlay).toBeGreaterThan(0);
    server.child.kill('SIGTERM');
    await server.exited;
  });
});
