// warren-cni against the real kernel, a real OVS and the real host-local.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../../../cni/naming.js';
import { vethCreateCommands } from '../../../cni/plan.js';
import { nodeState, podResidue } from '../../helpers/node-state.js';
import { run } from '../../helpers/sh.js';
import { ADD_REFUSALS, NETWORK, NodeFixture } from './fixture.js';

let fx: NodeFixture;
beforeAll(async () => {
  fx = await NodeFixture.start();
});
afterEach(async () => {
  await fx.cleanup();
});
afterAll(async () => {
  await fx.stop();
});

async function vsctl(...args: string[]): Promise<string> {
  return (await run('ovs-vsctl', [`--db=${fx.ovs.db}`, ...args])).trim();
}

describe('ADD, CHECK, DEL', () => {
  it('plugs a pod into the OVS bridge and returns the full result', async () => {
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: fx.config(), containerId: 'c1', netns: pod.path, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0' });
    expect(r.exitCode, r.stdout).toBe(0);
    const veth = hostVethName('c1', 'eth0');
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'warren0' }, { name: veth }, { name: 'eth0', mac: '0a:58:0a:f4:03:02', sandbox: pod.path }],
      ips: [{ address: '10.244.3.2/24', gateway: '10.244.3.1', interface: 2 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1' }],
      dns: {},
    });

    const [eth0] = JSON.parse((await pod.exec('ip', ['-json', 'addr', 'show', 'eth0'])).stdout) as { mtu: number; address: string; addr_info: { local: string; prefixlen: number }[] }[];
    expect(eth0!.mtu).toBe(1400);
    expect(eth0!.address).toBe('0a:58:0a:f4:03:02');
    expect(eth0!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('10.244.3.2/24');
    const [bridge] = JSON.parse((await fx.node.exec('ip', ['-json', '-4', 'addr', 'show', 'warren0'])).stdout) as { addr_info: { local: string; prefixlen: number }[] }[];
    expect(bridge!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.244.3.1/24']);
    const [hostEnd] = JSON.parse((await fx.node.exec('ip', ['-json', 'link', 'show', veth])).stdout) as { mtu: number }[];
    expect(hostEnd!.mtu).toBe(1400);

    expect(await vsctl('port-to-br', veth)).toBe('warren0');
    expect(await vsctl('get', 'Interface', veth, 'external_ids:cni-container-id', 'external_ids:k8s-pod-namespace', 'external_ids:k8s-pod-name'))
      .toBe('c1\nshop\nweb-0');
    const ping = await pod.exec('ping', ['-c', '1', '-W', '2', '10.244.3.1'], { allowFailure: true });
    expect(ping.exitCode, ping.stdout).toBe(0);

    const check = await fx.cni({ command: 'CHECK', config: fx.config({ prevResult: r.json }), containerId: 'c1', netns: pod.path });
    expect(check.exitCode, check.stdout).toBe(0);

    const del = await fx.cni({ command: 'DEL', config: fx.config(), containerId: 'c1', netns: pod.path });
    expect(del.exitCode, del.stdout).toBe(0);
    expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir))).toEqual({ veths: [], ports: [], allocations: [] });
    // DEL again, and with the netns gone: still success
    expect((await fx.cni({ command: 'DEL', config: fx.config(), containerId: 'c1', netns: pod.path })).exitCode).toBe(0);
    await pod.destroy();
    expect((await fx.cni({ command: 'DEL', config: fx.config(), containerId: 'c1', netns: '' })).exitCode).toBe(0);
  });

  it.each(['0.3.0', '0.3.1', '0.4.0', '1.1.0'])('answers a %s config in that version', async (version) => {
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: fx.config({ cniVersion: version }), containerId: `v${version}`, netns: pod.path });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.json!.cniVersion).toBe(version);
    const ip = (r.json!.ips as Record<string, unknown>[])[0]!;
    expect(ip.version).toBe(version.startsWith('0.') ? '4' : undefined);
    const iface = (r.json!.interfaces as Record<string, unknown>[])[2]!;
    expect(iface.mtu).toBe(version === '1.1.0' ? 1400 : undefined);
  });

  it('CHECK reports an address removed from the pod and an OVS port removed from the bridge', async () => {
    const pod = await fx.pod();
    const r = await fx.cni({ command: 'ADD', config: fx.config(), containerId: 'chk', netns: pod.path });
    expect(r.exitCode, r.stdout).toBe(0);
    const checkConf = fx.config({ prevResult: r.json });
    const address = (r.json!.ips as { address: string }[])[0]!.address;
    await pod.exec('ip', ['addr', 'del', address, 'dev', 'eth0']);
    const c1 = await fx.cni({ command: 'CHECK', config: checkConf, containerId: 'chk', netns: pod.path });
    expect(c1.json).toMatchObject({ code: 102, msg: `address ${address} is missing on eth0` });
    await pod.exec('ip', ['addr', 'add', address, 'dev', 'eth0']);
    await pod.exec('ip', ['route', 'add', 'default', 'via', '10.244.3.1']);
    expect((await fx.cni({ command: 'CHECK', config: checkConf, containerId: 'chk', netns: pod.path })).exitCode).toBe(0);
    await vsctl('del-port', hostVethName('chk', 'eth0'));
    const c2 = await fx.cni({ command: 'CHECK', config: checkConf, containerId: 'chk', netns: pod.path });
    expect(c2.json).toMatchObject({ code: 102, msg: `OVS port ${hostVethName('chk', 'eth0')} is missing` });
  });

  it('masquerades traffic leaving the pod CIDR with one rule for the node', async () => {
    const pods = [await fx.pod(), await fx.pod()];
    for (const [i, pod] of pods.entries()) {
      expect((await fx.cni({ command: 'ADD', config: fx.config(), containerId: `m${i}`, netns: pod.path })).exitCode).toBe(0);
    }
    const ruleset = (await fx.node.exec('nft', ['-j', 'list', 'table', 'inet', 'warren'])).stdout;
    const rules = (JSON.parse(ruleset) as { nftables: Record<string, unknown>[] }).nftables.filter((o) => 'rule' in o);
    expect(rules).toHaveLength(1);
    expect(ruleset).toContain('masquerade');
  });
});

describe('leftovers of an ADD that died', () => {
  it('adopts the host veth and OVS port of the same attachment instead of failing', async () => {
    const pod = await fx.pod();
    const veth = hostVethName('crashed', 'eth0');
    // What a killed ADD leaves: the host end of a veth (its peer elsewhere) and its OVS port.
    await fx.node.exec('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'orphan0']);
    await vsctl('--may-exist', 'add-br', 'warren0', '--', 'set', 'Bridge', 'warren0', 'datapath_type=netdev');
    await vsctl('add-port', 'warren0', veth);
    const r = await fx.cni({ command: 'ADD', config: fx.config(), containerId: 'crashed', netns: pod.path });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(await vsctl('get', 'Interface', veth, 'external_ids:cni-container-id')).toBe('crashed');
    const check = await fx.cni({ command: 'CHECK', config: fx.config({ prevResult: r.json }), containerId: 'crashed', netns: pod.path });
    expect(check.exitCode, check.stdout).toBe(0);
    const ping = await pod.exec('ping', ['-c', '1', '-W', '2', '10.244.3.1'], { allowFailure: true });
    expect(ping.exitCode, ping.stdout).toBe(0);
  });
});

describe('failures leave nothing behind', () => {
  it('rolls back the address, veth and port when the pod cannot be configured after IPAM', async () => {
    const pod = await fx.pod();
    const before = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    // A route whose gateway is not on any link: IPAM succeeds, then the pod's routes fail.
    const config = fx.config({}, { routes: [{ dst: '192.168.77.0/24', gw: '172.31.255.1' }] });
    const r = await fx.cni({ command: 'ADD', config, containerId: 'rb1', netns: pod.path });
    expect(r.exitCode).toBe(1);
    expect(r.json).toMatchObject({ code: 101 });
    expect(String(r.json!.details)).toMatch(/route replace 192.168.77.0\/24|Nexthop|unreachable/i);
    const after = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    expect(podResidue(after)).toEqual(podResidue(before));
    const inPod = JSON.parse((await pod.exec('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[];
    expect(inPod.map((l) => l.ifname)).toEqual(['lo']);
  });

  it('rolls back when OVS does not answer', async () => {
    const pod = await fx.pod();
    const before = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    const r = await fx.cni({ command: 'ADD', config: fx.config({ ovsdb: 'unix:/nonexistent/db.sock' }), containerId: 'rb2', netns: pod.path });
    expect(r.exitCode).toBe(1);
    expect(r.json).toMatchObject({ code: 104, msg: 'Open vSwitch failed' });
    expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir))).toEqual(podResidue(before));
  });

  it.each(ADD_REFUSALS)('refuses %s with code %i and changes nothing on the node', async (_, code, env, config) => {
    const pod = await fx.pod();
    const before = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    const conf = typeof config === 'string' ? config : fx.config(config ?? {});
    const r = await fx.cni({ command: 'ADD', config: conf, containerId: 'bad', netns: pod.path, env });
    expect(r.exitCode).toBe(1);
    expect(r.json).toMatchObject({ code, msg: expect.any(String) });
    expect(r.stdout).not.toMatch(/\n\s+at /);
    expect(await nodeState(fx.node, fx.ovs, fx.ipamDir)).toEqual(before);
  });
});

describe('many pods', () => {
  it('gives 50 simultaneous ADDs distinct addresses on one bridge, and 50 DELs leave nothing', async () => {
    const pods = await Promise.all(Array.from({ length: 50 }, () => fx.pod()));
    const adds = await Promise.all(pods.map((pod, i) => fx.cni({ command: 'ADD', config: fx.config(), containerId: `conc${i}`, netns: pod.path })));
    for (const a of adds) expect(a.exitCode, a.stdout).toBe(0);
    const addresses = adds.map((a) => (a.json!.ips as { address: string }[])[0]!.address);
    expect(new Set(addresses).size).toBe(50);
    expect((await vsctl('list-br')).split('\n')).toEqual(['warren0']);
    expect((await vsctl('list-ports', 'warren0')).split('\n').filter((p) => p.startsWith('wrn'))).toHaveLength(50);
    // every pod reaches the gateway
    const pings = await Promise.all(pods.map((p) => p.exec('ping', ['-c', '1', '-W', '2', '10.244.3.1'], { allowFailure: true })));
    expect(pings.filter((p) => p.exitCode !== 0)).toHaveLength(0);

    const dels = await Promise.all(pods.map((pod, i) => fx.cni({ command: 'DEL', config: fx.config(), containerId: `conc${i}`, netns: pod.path })));
    for (const d of dels) expect(d.exitCode, d.stdout).toBe(0);
    expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir))).toEqual({ veths: [], ports: [], allocations: [] });
  });
});

describe('GC and STATUS', () => {
  it('GC after a simulated reboot removes the ports and addresses of vanished pods and keeps the valid one', async () => {
    const pods = [await fx.pod(), await fx.pod(), await fx.pod()];
    const results = [];
    for (const [i, pod] of pods.entries()) {
      const r = await fx.cni({ command: 'ADD', config: fx.config({ cniVersion: '1.1.0' }), containerId: `gc${i}`, netns: pod.path });
      expect(r.exitCode, r.stdout).toBe(0);
      results.push(r.json);
    }
    // A reboot: the netns of pods 0 and 1 vanish without DEL; their OVS ports stay behind.
    await pods[0]!.destroy();
    await pods[1]!.destroy();
    const stale = await nodeState(fx.node, fx.ovs, fx.ipamDir);
    expect(podResidue(stale).ports, JSON.stringify(stale)).toHaveLength(3);
    expect(podResidue(stale).allocations).toHaveLength(3);

    const gc = await fx.cni({
      command: 'GC',
      config: fx.config({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'gc2', ifname: 'eth0' }] }),
    });
    expect(gc.exitCode, gc.stdout).toBe(0);
    const after = podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir));
    expect(after.ports).toEqual([hostVethName('gc2', 'eth0')]);
    expect(after.allocations).toEqual([(results[2]!.ips as { address: string }[])[0]!.address.split('/')[0]]);
    const check = await fx.cni({ command: 'CHECK', config: fx.config({ cniVersion: '1.1.0', prevResult: results[2] }), containerId: 'gc2', netns: pods[2]!.path });
    expect(check.exitCode, check.stdout).toBe(0);
  });

  it('GC removes the host veth of an ADD killed before its OVS port existed, and keeps another network\'s', async () => {
    // Exactly what such an ADD leaves: its veth, made by its own commands, and nothing in OVS.
    const [killed, other] = [await fx.pod(), await fx.pod()];
    const leave = async (containerId: string, netns: string, network: string) => {
      const a = { containerId, ifname: 'eth0', netns, hostVeth: hostVethName(containerId, 'eth0') };
      await fx.node.exec('ip', ['-batch', '-'], { input: `${vethCreateCommands(a, 1400, network).join('\n')}\n` });
      return a.hostVeth;
    };
    const mine = await leave('killed', killed.path, NETWORK);
    const theirs = await leave('other-net', other.path, 'another-network');
    expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir)).veths.sort()).toEqual([mine, theirs].sort());

    const gc = await fx.cni({ command: 'GC', config: fx.config({ cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }) });
    expect(gc.exitCode, gc.stdout).toBe(0);
    expect(podResidue(await nodeState(fx.node, fx.ovs, fx.ipamDir)).veths).toEqual([theirs]);
    await fx.node.exec('ip', ['link', 'del', theirs]);
  });

  it('STATUS succeeds when OVS answers and fails with code 50 when it does not', async () => {
    expect((await fx.cni({ command: 'STATUS', config: fx.config({ cniVersion: '1.1.0' }) })).exitCode).toBe(0);
    const down = await fx.cni({ command: 'STATUS', config: fx.config({ cniVersion: '1.1.0', ovsdb: 'unix:/nonexistent/db.sock' }) });
    expect(down.json).toMatchObject({ code: 50, msg: expect.stringContaining('Open vSwitch') });
    const noIpam = await fx.cni({ command: 'STATUS', config: fx.config({ cniVersion: '1.1.0' }), env: { CNI_PATH: '/nonexistent' } });
    expect(noIpam.json).toMatchObject({ code: 50 });
  });
});
