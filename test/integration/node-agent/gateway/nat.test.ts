// The gateway NAT on a real kernel. Three namespaces:
//   pod      10.244.1.5 (a pod of any node: they all reach the gateway with their own address)
//   gateway  forwarding; `ipsec0` stands in for libipsec's TUN: a veth toward the remote
//            holding the OIP 10.10.0.5/32, the overlay's range routed into it with the OIP as
//            source, as routes.ts does
//   remote   10.10.0.1, another site's OIP
// The remote can route back to the pods (through the gateway) on purpose: without the NAT a
// pod's connection succeeds with the pod's own address, so a missing or losing SNAT shows
// as a wrong address, not as a timeout. Each side runs a TCP server that answers with the
// peer address it saw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../cni/config.js';
import { masqueradeScript } from '../../../../cni/plan.js';
import { nftApply, nftJsonIfExists } from '../../../../lib/nft.js';
import { applyGatewayNat, forgetOipConnections, removeGatewayNat } from '../../../../node-agent/gateway/nat-apply.js';
import { kubeApiExport, type GatewayNatInput } from '../../../../node-agent/gateway/nat-plan.js';
import { Netns } from '../../../helpers/netns.js';
import { run, waitFor } from '../../../helpers/sh.js';
import { spawnIn, type Spawned } from '../../../helpers/spawn-in.js';

const POD = '10.244.1.5';
const POD_GW = '10.244.1.1';
const OIP = '10.10.0.5';
const REMOTE = '10.10.0.1';
const REMOTE_PORT = 7000;
const POD_PORT = 8443;
/** An address masquerade would choose on ipsec0 (same subnet as the remote), to tell it from the OIP. */
const OTHER_ON_EGRESS = '10.10.0.99';

const input: GatewayNatInput = {
  oip: OIP,
  egressDevice: 'ipsec0',
  overlayRanges: ['10.10.0.0/16', '10.20.0.0/16'],
  exports: [kubeApiExport(POD, POD_PORT), { port: 8080, protocol: 'tcp', target: POD, targetPort: 80 }],
};

const SERVER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
net.createServer((s) => s.end(s.remoteAddress + ':' + s.remotePort)).listen(Number(port), host, () => console.log('listening'));
`;
// A UDP server answering each datagram with the address it came from.
const UDP_SERVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(r.address + ':' + r.port, r.port, r.address));
s.bind(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;
// Sends one datagram from a fixed source port (one flow, as a resolver or a tunnel keeps); prints what the server saw.
const UDP_CLIENT = `
const s = require('node:dgram').createSocket('udp4');
const [host, port, from] = process.argv.slice(1);
s.bind(Number(from), () => s.send('x', Number(port), host));
s.on('message', (m) => { console.log(String(m)); process.exit(0); });
setTimeout(() => { console.log('timeout'); process.exit(0); }, 2000);
`;
const UDP_PORT = 7001;
// Prints {local, seen}: its own address and the one the server saw, or {error}.
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let local = '', seen = '';
s.setTimeout(3000, () => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); });
s.on('connect', () => { local = s.localAddress + ':' + s.localPort; });
s.on('data', (d) => { seen += d; });
s.on('end', () => { console.log(JSON.stringify({ local, seen })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
`;

let pod: Netns | undefined;
let gw: Netns | undefined;
let remote: Netns | undefined;
const servers: Spawned[] = [];

interface Outcome { local?: string; seen?: string; error?: string }

async function connect(from: Netns, host: string, port: number): Promise<Outcome> {
  const { stdout } = await from.runner(process.execPath, ['-e', CLIENT, host, String(port)], { timeoutMs: 10_000 });
  return JSON.parse(stdout) as Outcome;
}

const listTable = () => nftJsonIfExists(gw!.runner, ['list', 'table', 'ip', 'warren_gateway']);
const tables = async (): Promise<string> => (await gw!.runner('nft', ['list', 'tables'])).stdout;
const ruleset = async (): Promise<string> => (await gw!.runner('nft', ['list', 'table', 'ip', 'warren_gateway'])).stdout;
const tableHandle = async (): Promise<number> => ((await listTable()) as { nftables: { table?: { handle: number } }[] }).nftables.find((o) => o.table)!.table!.handle;
type Counted = { chain: string; comment: string; expr: { counter?: { packets: number } }[] };
const counters = async (): Promise<Record<string, number>> => Object.fromEntries(
  ((await listTable()) as { nftables: { rule?: Counted }[] }).nftables.filter((o) => o.rule).map((o) => [o.rule!.comment, o.rule!.expr.find((e) => e.counter)!.counter!.packets]),
);

async function serve(ns: Netns, host: string, port: number): Promise<void> {
  const s = spawnIn(ns, process.execPath, ['-e', SERVER, host, String(port)]);
  servers.push(s);
  await waitFor(`the server at ${host}:${port}`, () => s.output().includes('listening') || s.child.exitCode !== null, 10_000);
  expect(s.output()).toContain('listening');
}

/** A veth pair straight into two namespaces: nothing ever appears in the root namespace. */
async function veth(a: Netns, nameA: string, b: Netns, nameB: string): Promise<void> {
  await run('ip', ['-n', a.name, 'link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name]);
  await run('ip', ['-n', a.name, 'link', 'set', nameA, 'up']);
  await run('ip', ['-n', b.name, 'link', 'set', nameB, 'up']);
}

beforeAll(async () => {
  pod = await Netns.create('pod');
  gw = await Netns.create('gw');
  remote = await Netns.create('rem');
  await veth(gw, 'topod', pod, 'eth0');
  await veth(gw, 'ipsec0', remote, 'eth0');
  await pod.runner('ip', ['addr', 'add', `${POD}/24`, 'dev', 'eth0']);
  await pod.runner('ip', ['route', 'add', 'default', 'via', POD_GW]);
  await gw.runner('ip', ['addr', 'add', `${POD_GW}/24`, 'dev', 'topod']);
  await gw.runner('ip', ['addr', 'add', `${OIP}/32`, 'dev', 'ipsec0']);
  await gw.runner('ip', ['route', 'add', '10.10.0.0/16', 'dev', 'ipsec0', 'src', OIP]);
  await gw.runner('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await remote.runner('ip', ['addr', 'add', `${REMOTE}/32`, 'dev', 'eth0']);
  await remote.runner('ip', ['route', 'add', '10.10.0.0/16', 'dev', 'eth0']);
  await remote.runner('ip', ['route', 'add', '10.244.0.0/16', 'via', OIP]);
  await serve(remote, REMOTE, REMOTE_PORT);
  await serve(pod, POD, POD_PORT);
}, 60_000);

afterAll(async () => {
  for (const s of servers) {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await s.exited;
  }
  for (const ns of [pod, gw, remote]) await ns?.destroy();
}, 60_000);

describe('the gateway NAT on a real kernel', () => {
  it('without the table, the pod leaves with its own address and nothing answers at the OIP:6443 (what the test tells apart)', async () => {
    expect(await removeGatewayNat(gw!.runner)).toBe('absent');
    const out = await connect(pod!, REMOTE, REMOTE_PORT);
    expect(out.seen).toBe(out.local);
    expect(out.seen).toMatch(new RegExp(`^${POD.replace(/\./g, '\\.')}:`));
    expect(await connect(remote!, OIP, 6443)).toEqual({ error: 'ECONNREFUSED' });
  });

  it('with it, the pod reaches the remote as the OIP, and the remote reaches the pod\'s server at OIP:6443 with its own address kept', async () => {
    expect(await applyGatewayNat(gw!.runner, input)).toBe('created');

    const out = await connect(pod!, REMOTE, REMOTE_PORT);
    expect(out.local).toMatch(/^10\.244\.1\.5:/);
    expect(out.seen).toMatch(/^10\.10\.0\.5:\d+$/);

    const inbound = await connect(remote!, OIP, 6443);
    expect(inbound.local).toMatch(/^10\.10\.0\.1:/);
    expect(inbound.seen).toBe(inbound.local); // address and port: no SNAT on the way in
    // An export nobody listens behind is refused by the pod (its rule counts it below), not by the gateway.
    expect(await connect(remote!, OIP, 8080)).toEqual({ error: 'ECONNREFUSED' });
    // A port not exported still ends at the gateway itself.
    expect(await connect(remote!, OIP, POD_PORT)).toEqual({ error: 'ECONNREFUSED' });

    // The gateway's own traffic already leaves from the OIP (its route says so): the rule leaves it alone.
    const before = await counters();
    const own = await connect(gw!, REMOTE, REMOTE_PORT);
    expect(own.seen).toBe(own.local);
    expect(own.seen).toMatch(/^10\.10\.0\.5:/);
    expect(await counters()).toEqual(before);
    expect(before).toEqual({
      'warren-gateway: pods to the overlay leave as 10.10.0.5': 1, // NAT chains see only a connection's first packet
      'warren-gateway: tcp 6443 goes to 10.244.1.5:8443': 1,
      'warren-gateway: tcp 8080 goes to 10.244.1.5:80': 1,
    });
  });

  it('applying again changes nothing; another plan or a rule added by hand is replaced as a whole', async () => {
    expect(await applyGatewayNat(gw!.runner, input)).not.toBe('absent');
    const handle = await tableHandle();
    const text = await ruleset();
    expect(await applyGatewayNat(gw!.runner, input)).toBe('unchanged');
    expect(await applyGatewayNat(gw!.runner, { ...input, overlayRanges: ['10.20.0.0/16', '10.10.0.0/16', '10.10.9.0/24'] })).toBe('unchanged');
    expect(await tableHandle()).toBe(handle);
    expect(await ruleset()).toBe(text); // counters included: not even re-created
    expect(text.match(/ snat to /g)).toHaveLength(1);
    expect(text.match(/ dnat to /g)).toHaveLength(2);

    await gw!.runner('nft', ['add', 'rule', 'ip', 'warren_gateway', 'prerouting', 'tcp', 'dport', '22', 'dnat', 'to', '10.244.1.9']);
    expect(await applyGatewayNat(gw!.runner, input)).toBe('replaced');
    expect(await ruleset()).not.toContain('10.244.1.9');
    expect(await applyGatewayNat(gw!.runner, input)).toBe('unchanged');

    // Failover to a hub with another OIP: the new table in one transaction, then back.
    expect(await applyGatewayNat(gw!.runner, { ...input, oip: '10.10.0.6' })).toBe('replaced');
    expect(await ruleset()).toContain('snat to 10.10.0.6');
    expect(await applyGatewayNat(gw!.runner, input)).toBe('replaced');
    expect((await ruleset()).match(/ dnat to /g)).toHaveLength(2);
  });

  it('wins over the CNI plugin\'s masquerade at srcnat in its own table, created before or after it, and leaves that table alone', async () => {
    await removeGatewayNat(gw!.runner);
    // The egress device gets an address masquerade prefers for the remote (same subnet), as a TUN with charon's address might.
    await gw!.runner('ip', ['addr', 'add', `${OTHER_ON_EGRESS}/24`, 'dev', 'ipsec0']);
    const cni = masqueradeScript(parseConfig({ cniVersion: '1.0.0', name: 'warren', type: 'warren', bridge: 'warren0', podCIDR: '10.244.0.0/16', ipam: { type: 'host-local' } }));
    const cniChain = async (): Promise<string> => (await gw!.runner('nft', ['list', 'chain', 'inet', 'warren', 'postrouting_warren0'])).stdout.replace(/counter packets \d+ bytes \d+ /g, '');
    const dropCni = (): Promise<unknown> => gw!.runner('nft', ['delete', 'table', 'inet', 'warren'], { allowFailure: true });
    try {
      await nftApply(gw!.runner, cni);
      expect((await connect(pod!, REMOTE, REMOTE_PORT)).seen).toMatch(/^10\.10\.0\.99:/); // the masquerade alone: what the test tells apart

      // The masquerade first, the NAT after (the chain registered last runs first at equal priority).
      const chain = await cniChain();
      expect(await applyGatewayNat(gw!.runner, input)).toBe('created');
      expect((await connect(pod!, REMOTE, REMOTE_PORT)).seen).toMatch(/^10\.10\.0\.5:/);
      expect(await cniChain()).toBe(chain);

      // The NAT first, the masquerade after, as when the gateway node's first pod comes after the hub.
      await dropCni();
      await nftApply(gw!.runner, cni);
      expect(await applyGatewayNat(gw!.runner, input)).toBe('unchanged');
      expect((await connect(pod!, REMOTE, REMOTE_PORT)).seen).toMatch(/^10\.10\.0\.5:/);

      expect(await removeGatewayNat(gw!.runner)).toBe('removed');
      expect(await cniChain()).toBe(chain);
      expect(await tables()).toContain('table inet warren');
    } finally {
      await dropCni();
      await gw!.runner('ip', ['addr', 'del', `${OTHER_ON_EGRESS}/24`, 'dev', 'ipsec0']);
    }
  });

  it('forgets the flows of an OIP no longer in use: a UDP flow that never pauses then leaves as the new one', async () => {
    const OIP2 = '10.10.0.6';
    await gw!.runner('ip', ['addr', 'add', `${OIP2}/32`, 'dev', 'ipsec0']);
    const s = spawnIn(remote!, process.execPath, ['-e', UDP_SERVER, REMOTE, String(UDP_PORT)]);
    servers.push(s);
    await waitFor('the UDP server', () => s.output().includes('listening'), 10_000);
    const send = async () => (await pod!.runner(process.execPath, ['-e', UDP_CLIENT, REMOTE, String(UDP_PORT), '40000'])).stdout.trim();
    try {
      await removeGatewayNat(gw!.runner);
      expect(await applyGatewayNat(gw!.runner, input)).toBe('created');
      expect(await send()).toBe(`${OIP}:40000`);
      // The hub in use changes: the new table alone leaves the flow on its old binding (what the test tells apart).
      expect(await applyGatewayNat(gw!.runner, { ...input, oip: OIP2 })).toBe('replaced');
      expect(await send()).toBe(`${OIP}:40000`);
      expect(await forgetOipConnections(gw!.runner, OIP)).toBe('flushed');
      expect(await send()).toBe(`${OIP2}:40000`);
      // Nothing left to forget is not an error; a bad address is refused before conntrack runs.
      expect(await forgetOipConnections(gw!.runner, OIP)).toBe('none');
      await expect(forgetOipConnections(gw!.runner, '10.10.0')).rejects.toThrow('gateway NAT: oip "10.10.0" is not an IPv4 address');
    } finally {
      await removeGatewayNat(gw!.runner);
      await gw!.runner('ip', ['addr', 'del', `${OIP2}/32`, 'dev', 'ipsec0']);
    }
  });

  it('with no hub up the table goes, and the pods no longer leave as the OIP', async () => {
    await removeGatewayNat(gw!.runner);
    expect(await applyGatewayNat(gw!.runner, input)).toBe('created');
    expect(await applyGatewayNat(gw!.runner, { ...input, oip: undefined })).toBe('removed');
    expect(await listTable()).toBeUndefined();
    expect(await tables()).not.toContain('warren_gateway');
    expect(await applyGatewayNat(gw!.runner, { ...input, oip: undefined })).toBe('absent');
    expect(await removeGatewayNat(gw!.runner)).toBe('absent');
    const out = await connect(pod!, REMOTE, REMOTE_PORT);
    expect(out.seen).toBe(out.local);
    expect(await connect(remote!, OIP, 6443)).toEqual({ error: 'ECONNREFUSED' });

    expect(await applyGatewayNat(gw!.runner, input)).toBe('created');
    expect(await removeGatewayNat(gw!.runner)).toBe('removed');
    expect(await tables()).not.toContain('warren_gateway');
  });
});
