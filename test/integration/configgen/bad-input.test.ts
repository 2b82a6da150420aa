// Every bad input the issue lists, through the built binary: a message naming the field
// and value, exit status 2, nothing written and nothing allocated.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configgen, configgenFixture, type NodeDirs } from './run.js';

const fx = configgenFixture();
let dirs: NodeDirs;

function base(): string[] {
  dirs = fx.node();
  return ['--etcd-endpoints', fx.etcd.endpoint, '--node-name', 'node-a', '--cni-conf-dir', dirs.confDir, '--state-dir', dirs.stateDir, '--mtu', '1420'];
}

async function expectRefused(args: string[], env: Record<string, string>, message: RegExp): Promise<void> {
  const r = await configgen(args, env);
  expect(r.exitCode, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n'), 'one line, no stack trace').toHaveLength(1);
  expect(dirs.wroteNothing()).toBe(true);
  expect((await fx.etcd.dump('/')).size, 'nothing allocated').toBe(0);
}

const pool = (podCIDR: string, nodeBits: string) => ['--pod-cidr', podCIDR, '--node-bits', nodeBits];

describe('warren-configgen refuses bad input', () => {
  it.each([
    ['an invalid CIDR', pool('10.244.0.0/33', '8'), /^warren-configgen: --pod-cidr "10.244.0.0\/33" is not a CIDR/],
    ['a CIDR without prefix', pool('10.244.0.0', '8'), /--pod-cidr "10.244.0.0" is not a CIDR/],
    ['host bits set', pool('10.244.0.16/16', '8'), /--pod-cidr "10.244.0.16\/16" has host bits set \(the network is 10.244.0.0\/16\)/],
    ['host bits in the host CIDR', [...pool('10.244.0.0/16', '8'), '--host-cidr', '10.10.0.1/16'], /--host-cidr "10.10.0.1\/16" has host bits set/],
    ['nodeBits 0', pool('10.244.0.0/16', '0'), /--node-bits 0 must be at least 1/],
    ['negative nodeBits', pool('10.244.0.0/16', '-1'), /--node-bits -1 must be at least 1/],
    ['nodeBits leaving fewer than 2 pod addresses', pool('10.244.0.0/16', '14'), /--node-bits 14 makes \/30 node subnets of 10.244.0.0\/16, leaving 1 pod address per node/],
    ['non-numeric nodeBits', pool('10.244.0.0/16', 'eight'), /--node-bits "eight" is not a whole number/],
    ['a non-numeric MTU', [...pool('10.244.0.0/16', '8'), '--mtu', '1400b'], /--mtu "1400b" is not a whole number/],
    ['a pod CIDR overlapping the host CIDR', [...pool('10.0.0.0/8', '8'), '--host-cidr', '10.10.0.0/16'], /--pod-cidr 10.0.0.0\/8 overlaps --host-cidr 10.10.0.0\/16/],
    ['a missing pod CIDR', ['--node-bits', '8'], /--pod-cidr is required/],
  ])('%s', async (_, args, message) => {
    await expectRefused([...base(), ...args], {}, message);
  });

  it('names the environment variable a bad value came from', async () => {
    await expectRefused(base(), { WARREN_POD_CIDR: '10.244.0.0/16', WARREN_NODE_BITS: 'x' }, /WARREN_NODE_BITS "x" is not a whole number/);
  });

  it('names the config file field a bad value came from (Evio\'s net-conf.json)', async () => {
    const args = base();
    const file = join(dirs.root, 'net-conf.json');
    writeFileSync(file, JSON.stringify({ cniVersion: '0.3.1', type: 'evioPlugin', nodeBits: '8', podCIDR: '10.244.0.16/16', dataStore: '127.0.0.1:1', auth: false }));
    await expectRefused([...args, '--config', file], {}, new RegExp(`podCIDR in ${file} "10.244.0.16/16" has host bits set`));
  });

  it('takes Evio\'s net-conf.json as it is, flags winning over it', async () => {
    const args = base();
    const file = join(dirs.root, 'net-conf.json');
    const endpoint = fx.etcd.endpoint.replace('http://', '');
    writeFileSync(file, JSON.stringify({ cniVersion: '0.3.1', name: 'k8s-pod-network', type: 'evioPlugin', bridge: 'evioB1B111B', bridgeType: 'OVS',
      isGateway: true, isDefaultGateway: true, isIPMasq: true, nodeBits: '8', podCIDR: '10.99.0.0/16', dataStore: endpoint, auth: false }));
    const r = await configgen(['--config', file, ...args.filter((a, i) => a !== '--etcd-endpoints' && args[i - 1] !== '--etcd-endpoints'), '--node-bits', '6']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(dirs.nodeFile()).toMatchObject({ podCIDR: '10.99.0.0/16', nodeBits: 6, bridge: 'evioB1B111B' });
  });
});
