// The gateway NAT's decisions: the script for typical inputs, every input it refuses (with
// the field and value named), and the in-sync test against what a real nft 1.0.6 printed
// for the script (LISTED below, captured from `nft -j list table ip warren_gateway` after
// applying gatewayNatScript(input)). Real packets: test/integration/node-agent/gateway/nat.test.ts.
import { describe, expect, it } from 'vitest';
import type { Runner, RunOptions } from '../../../../lib/runner.js';
import { applyGatewayNat, removeGatewayNat } from '../../../../node-agent/gateway/nat-apply.js';
import {
  gatewayNatInSync, GatewayNatInputError, gatewayNatRemovalScript, gatewayNatScript, kubeApiExport, type GatewayNatInput,
} from '../../../../node-agent/gateway/nat-plan.js';

// Unsorted, with two adjacent /16s that nft merges into one /15: the listing differs in form, not in meaning.
const input: GatewayNatInput = {
  oip: '10.10.0.5',
  egressDevice: 'ipsec0',
  overlayRanges: ['10.20.0.0/16', '10.10.0.0/16', '10.11.0.0/16', '10.30.0.7/32'],
  exports: [kubeApiExport('192.168.1.10'), { port: 53, protocol: 'udp', target: '10.244.1.6', targetPort: 5353 }],
};

const LISTED = '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "warren_gateway", "handle": 7}}, {"chain": {"family": "ip", "table": "warren_gateway", "name": "postrouting", "handle": 1, "type": "nat", "hook": "postrouting", "prio": 90, "policy": "accept"}}, {"chain": {"family": "ip", "table": "warren_gateway", "name": "prerouting", "handle": 2, "type": "nat", "hook": "prerouting", "prio": -110, "policy": "accept"}}, {"rule": {"family": "ip", "table": "warren_gateway", "chain": "postrouting", "handle": 4, "comment": "warren-gateway: pods to the overlay leave as 10.10.0.5", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "ipsec0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"set": [{"prefix": {"addr": "10.10.0.0", "len": 15}}, {"prefix": {"addr": "10.20.0.0", "len": 16}}, "10.30.0.7"]}}}, {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.10.0.5"}}, {"counter": {"packets": 0, "bytes": 0}}, {"snat": {"addr": "10.10.0.5"}}]}}, {"rule": {"family": "ip", "table": "warren_gateway", "chain": "prerouting", "handle": 5, "comment": "warren-gateway: tcp 6443 goes to 192.168.1.10:6443", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ipsec0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.10.0.5"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 6443}}, {"counter": {"packets": 0, "bytes": 0}}, {"dnat": {"addr": "192.168.1.10", "port": 6443}}]}}, {"rule": {"family": "ip", "table": "warren_gateway", "chain": "prerouting", "handle": 6, "comment": "warren-gateway: udp 53 goes to 10.244.1.6:5353", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "ipsec0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.10.0.5"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"counter": {"packets": 0, "bytes": 0}}, {"dnat": {"addr": "10.244.1.6", "port": 5353}}]}}]}';

type Listed = { nftables: Record<string, unknown>[] };
type Rule = { chain: string; comment: string; expr: Record<string, unknown>[] };
const listed = (): Listed => JSON.parse(LISTED) as Listed;
const rules = (l: Listed): Rule[] => l.nftables.filter((o) => 'rule' in o).map((o) => o.rule as Rule);

describe('gatewayNatScript', () => {
  it('replaces the whole table: SNAT to the OIP toward the overlay, DNAT of each export, 10 before the usual NAT priorities', () => {
    expect(gatewayNatScript(input)).toBe([
      'add table ip warren_gateway',
      'delete table ip warren_gateway',
      'table ip warren_gateway {',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat - 10; policy accept;',
      '    oifname "ipsec0" ip daddr { 10.10.0.0/16, 10.11.0.0/16, 10.20.0.0/16, 10.30.0.7/32 } ip saddr != 10.10.0.5 counter snat to 10.10.0.5 comment "warren-gateway: pods to the overlay leave as 10.10.0.5"',
      '  }',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat - 10; policy accept;',
      '    iifname "ipsec0" ip daddr 10.10.0.5 tcp dport 6443 counter dnat to 192.168.1.10:6443 comment "warren-gateway: tcp 6443 goes to 192.168.1.10:6443"',
      '    iifname "ipsec0" ip daddr 10.10.0.5 udp dport 53 counter dnat to 10.244.1.6:5353 comment "warren-gateway: udp 53 goes to 10.244.1.6:5353"',
      '  }',
      '}',
      '',
    ].join('\n'));
  });

  it('answers exports at every OIP whose tunnel is up (a site on the second hub knows us by that one), SNAT to the active one only', () => {
    const two: GatewayNatInput = { oip: '10.10.0.5', exportOips: ['10.10.1.9', '10.10.0.5'], egressDevice: 'ipsec0', overlayRanges: ['10.10.0.0/16'], exports: [kubeApiExport('192.168.1.10')] };
    const script = gatewayNatScript(two)!;
    expect(script).toContain('ip daddr { 10.10.0.5, 10.10.1.9 } tcp dport 6443 counter dnat to 192.168.1.10:6443');
    expect(script).toContain('ip saddr != 10.10.0.5 counter snat to 10.10.0.5');
    // What nft 1.0.6 printed for exactly that script: in sync; with the second hub gone, not.
    const printed = JSON.parse("{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"release_name\": \"Lester Gooch #5\", \"json_schema_version\": 1}}, {\"table\": {\"family\": \"ip\", \"name\": \"warren_gateway\", \"handle\": 2}}, {\"chain\": {\"family\": \"ip\", \"table\": \"warren_gateway\", \"name\": \"postrouting\", \"handle\": 1, \"type\": \"nat\", \"hook\": \"postrouting\", \"prio\": 90, \"policy\": \"accept\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"warren_gateway\", \"name\": \"prerouting\", \"handle\": 2, \"type\": \"nat\", \"hook\": \"prerouting\", \"prio\": -110, \"policy\": \"accept\"}}, {\"rule\": {\"family\": \"ip\", \"table\": \"warren_gateway\", \"chain\": \"postrouting\", \"handle\": 3, \"comment\": \"warren-gateway: pods to the overlay leave as 10.10.0.5\", \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"meta\": {\"key\": \"oifname\"}}, \"right\": \"ipsec0\"}}, {\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": {\"prefix\": {\"addr\": \"10.10.0.0\", \"len\": 16}}}}, {\"match\": {\"op\": \"!=\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"}}, \"right\": \"10.10.0.5\"}}, {\"counter\": {\"packets\": 0, \"bytes\": 0}}, {\"snat\": {\"addr\": \"10.10.0.5\"}}]}}, {\"rule\": {\"family\": \"ip\", \"table\": \"warren_gateway\", \"chain\": \"prerouting\", \"handle\": 5, \"comment\": \"warren-gateway: tcp 6443 goes to 192.168.1.10:6443\", \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"meta\": {\"key\": \"iifname\"}}, \"right\": \"ipsec0\"}}, {\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"daddr\"}}, \"right\": {\"set\": [\"10.10.0.5\", \"10.10.1.9\"]}}}, {\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 6443}}, {\"counter\": {\"packets\": 0, \"bytes\": 0}}, {\"dnat\": {\"addr\": \"192.168.1.10\", \"port\": 6443}}]}}]}") as unknown;
    expect(gatewayNatInSync(two, printed)).toBe(true);
    expect(gatewayNatInSync({ ...two, exportOips: [] }, printed)).toBe(false);
    expect(() => gatewayNatScript({ ...two, exportOips: ['10.10.1'] })).toThrow('gateway NAT: exportOips[0] "10.10.1" is not an IPv4 address');
  });

  it('writes one range as a plain match and drops ranges another one covers, in any input order', () => {
    const one = gatewayNatScript({ ...input, overlayRanges: ['10.10.0.0/16'], exports: [] })!;
    expect(one).toContain('oifname "ipsec0" ip daddr 10.10.0.0/16 ip saddr != 10.10.0.5 counter snat to 10.10.0.5');
    const covered = gatewayNatScript({ ...input, overlayRanges: ['10.10.7.0/24', '10.0.0.0/8', '10.10.0.0/16', '10.0.0.0/8'] });
    expect(covered).toBe(gatewayNatScript({ ...input, overlayRanges: ['10.0.0.0/8'] }));
    expect(gatewayNatScript({ ...input, overlayRanges: [...input.overlayRanges].reverse() })).toBe(gatewayNatScript(input));
  });

  it('keeps an empty prerouting chain without exports, and never a forward chain or a drop', () => {
    const script = gatewayNatScript({ ...input, exports: [] })!;
    expect(script).not.toContain('dnat');
    expect(script).toContain('  chain prerouting {\n    type nat hook prerouting priority dstnat - 10; policy accept;\n  }');
    for (const s of [script, gatewayNatScript(input)!]) {
      expect(s).not.toMatch(/forward|drop|reject|flush ruleset/);
      // Only its own table is named anywhere in the script.
      expect([...s.matchAll(/table (\w+) (\w+)/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(Array(3).fill('ip warren_gateway'));
    }
  });

  it('plans no table while no hub is up, and removes it with the add-then-delete pair', () => {
    expect(gatewayNatScript({ ...input, oip: undefined })).toBeUndefined();
    expect(gatewayNatRemovalScript()).toBe('add table ip warren_gateway\ndelete table ip warren_gateway\n');
  });

  it('exports the Kubernetes API at 6443 by default', () => {
    expect(kubeApiExport('192.168.1.10')).toEqual({ port: 6443, protocol: 'tcp', target: '192.168.1.10', targetPort: 6443 });
    expect(kubeApiExport('10.96.5.5', 443)).toEqual({ port: 6443, protocol: 'tcp', target: '10.96.5.5', targetPort: 443 });
  });
});

describe('validation', () => {
  const x = (o: Partial<NonNullable<GatewayNatInput['exports'][number]>>) => ({ ...kubeApiExport('192.168.1.10'), ...o });
  const cases: { name: string; change: Partial<GatewayNatInput>; field: string; value: unknown; why: RegExp }[] = [
    { name: 'OIP not an address', change: { oip: '10.10.0' }, field: 'oip', value: '10.10.0', why: /not an IPv4 address/ },
    { name: 'OIP in a form nft reads otherwise', change: { oip: '010.10.0.5' }, field: 'oip', value: '010.10.0.5', why: /not an IPv4 address/ },
    { name: 'OIP IPv6', change: { oip: 'fd00::5' }, field: 'oip', value: 'fd00::5', why: /not an IPv4 address/ },
    { name: 'OIP unspecified', change: { oip: '0.0.0.0' }, field: 'oip', value: '0.0.0.0', why: /unspecified/ },
    { name: 'egress device with a space', change: { egressDevice: 'ipsec 0' }, field: 'egressDevice', value: 'ipsec 0', why: /interface name/ },
    { name: 'egress device that would close the quotes', change: { egressDevice: 'x" accept' }, field: 'egressDevice', value: 'x" accept', why: /interface name/ },
    { name: 'egress device longer than 15 bytes', change: { egressDevice: 'a'.repeat(16) }, field: 'egressDevice', value: 'a'.repeat(16), why: /interface name/ },
    { name: 'no overlay range', change: { overlayRanges: [] }, field: 'overlayRanges', value: [], why: /at least one/ },
    { name: 'range without a prefix', change: { overlayRanges: ['10.10.0.0/16', '10.20.0.0'] }, field: 'overlayRanges[1]', value: '10.20.0.0', why: /not an IPv4 CIDR/ },
    { name: 'range with host bits', change: { overlayRanges: ['10.10.0.5/16'] }, field: 'overlayRanges[0]', value: '10.10.0.5/16', why: /host bits set/ },
    { name: 'range prefix over 32', change: { overlayRanges: ['10.10.0.0/33'] }, field: 'overlayRanges[0]', value: '10.10.0.0/33', why: /not a network/ },
    { name: 'IPv6 range', change: { overlayRanges: ['fd00::/64'] }, field: 'overlayRanges[0]', value: 'fd00::/64', why: /not an IPv4 CIDR/ },
    { name: 'port 0', change: { exports: [x({ port: 0 })] }, field: 'exports[0].port', value: 0, why: /1 to 65535/ },
    { name: 'port 65536', change: { exports: [x({ port: 65536 })] }, field: 'exports[0].port', value: 65536, why: /1 to 65535/ },
    { name: 'fractional target port', change: { exports: [x({ targetPort: 80.5 })] }, field: 'exports[0].targetPort', value: 80.5, why: /1 to 65535/ },
    { name: 'protocol sctp', change: { exports: [x({ protocol: 'sctp' as 'tcp' })] }, field: 'exports[0].protocol', value: 'sctp', why: /tcp or udp/ },
    { name: 'target a name', change: { exports: [x({ target: 'kubernetes.default' })] }, field: 'exports[0].target', value: 'kubernetes.default', why: /not an IPv4 address/ },
    { name: 'target on loopback', change: { exports: [x({ target: '127.0.0.1' })] }, field: 'exports[0].target', value: '127.0.0.1', why: /loopback/ },
    { name: 'target multicast', change: { exports: [x({}), x({ port: 80, target: '224.0.0.1' })] }, field: 'exports[1].target', value: '224.0.0.1', why: /multicast/ },
    { name: 'the same port twice', change: { exports: [x({}), x({ port: 53, protocol: 'udp' }), x({ target: '10.244.1.5' })] }, field: 'exports[2].port', value: 6443, why: /already exported by exports\[0\]/ },
    { name: 'an export that is not an object', change: { exports: [null as unknown as GatewayNatInput['exports'][number]] }, field: 'exports[0]', value: null, why: /must be/ },
  ];
  it.each(cases)('$name', ({ change, field, value, why }) => {
    let err: unknown;
    try {
      gatewayNatScript({ ...input, ...change });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayNatInputError);
    expect(err).toMatchObject({ code: 'GATEWAY_NAT_INVALID', field, value });
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toContain(`${field} ${JSON.stringify(value)}`);
  });

  it('validates while no hub is up too: a bad export is found before the first OIP', () => {
    expect(() => gatewayNatScript({ ...input, oip: undefined, exports: [x({ port: 0 })] })).toThrow(GatewayNatInputError);
    expect(() => gatewayNatInSync({ ...input, oip: undefined, exports: [x({ port: 0 })] }, undefined)).toThrow(GatewayNatInputError);
  });

  it('takes tcp and udp on the same port as two exports', () => {
    expect(gatewayNatScript({ ...input, exports: [x({ port: 53, protocol: 'udp' }), x({ port: 53, protocol: 'tcp' })] })).toMatch(/udp dport 53 .*\n.*tcp dport 53 /);
  });
});

describe('gatewayNatInSync (nft -j list table ip warren_gateway)', () => {
  it('accepts what nft printed for the script: merged ranges, plain /32, any counters', () => {
    const l = listed();
    expect(gatewayNatInSync(input, l)).toBe(true);
    for (const r of rules(l)) for (const e of r.expr) if ('counter' in e) e.counter = { packets: 12345, bytes: 999999 };
    expect(gatewayNatInSync(input, l)).toBe(true);
    // The same addresses written another way by the caller.
    expect(gatewayNatInSync({ ...input, overlayRanges: ['10.10.0.0/15', '10.30.0.7/32', '10.20.0.0/16', '10.20.5.0/24'] }, l)).toBe(true);
    // nft prints three adjacent /16s as one range.
    const r = rules(l)[0]!.expr[1] as { match: { right: unknown } };
    r.match.right = { set: [{ range: ['10.10.0.0', '10.11.255.255'] }, { prefix: { addr: '10.20.0.0', len: 16 } }, '10.30.0.7'] };
    expect(gatewayNatInSync(input, l)).toBe(true);
  });

  it('sees an absent table, another plan, and any change made behind its back', () => {
    expect(gatewayNatInSync(input, undefined)).toBe(false);
    const others: [string, Partial<GatewayNatInput>][] = [
      ['another OIP (failover to the next hub)', { oip: '10.10.0.6' }],
      ['another egress device', { egressDevice: 'eth1' }],
      ['a range less', { overlayRanges: ['10.10.0.0/16', '10.11.0.0/16', '10.20.0.0/16'] }],
      ['a range more', { overlayRanges: [...input.overlayRanges, '10.40.0.0/16'] }],
      ['an export less', { exports: input.exports.slice(0, 1) }],
      ['another target port', { exports: [kubeApiExport('192.168.1.10', 443), input.exports[1]!] }],
      ['exports in another order', { exports: [...input.exports].reverse() }],
    ];
    for (const [what, change] of others) expect(gatewayNatInSync({ ...input, ...change }, listed()), what).toBe(false);

    const edits: [string, (l: Listed) => void][] = [
      ['an extra rule', (l) => l.nftables.push({ rule: { ...rules(l)[1]!, handle: 9 } })],
      ['a rule removed', (l) => (l.nftables = l.nftables.filter((o) => !('rule' in o && (o.rule as Rule).chain === 'postrouting')))],
      ['the OIP exception removed', (l) => rules(l)[0]!.expr.splice(2, 1)],
      ['snat turned masquerade', (l) => (rules(l)[0]!.expr[4] = { masquerade: null })],
      ['a set added', (l) => l.nftables.push({ set: { family: 'ip', table: 'warren_gateway', name: 's', type: 'ipv4_addr' } })],
      ['a forward chain added', (l) => l.nftables.push({ chain: { name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } })],
      ['srcnat priority', (l) => ((l.nftables.find((o) => 'chain' in o)!.chain as { prio: number }).prio = 100)],
      ['drop policy', (l) => ((l.nftables.find((o) => 'chain' in o)!.chain as { policy: string }).policy = 'drop')],
      ['another comment', (l) => (rules(l)[1]!.comment = 'edited')],
    ];
    for (const [what, edit] of edits) {
      const l = listed();
      edit(l);
      expect(gatewayNatInSync(input, l), what).toBe(false);
    }
  });

  it('while no hub is up, only an absent table is in sync', () => {
    expect(gatewayNatInSync({ ...input, oip: undefined }, undefined)).toBe(true);
    expect(gatewayNatInSync({ ...input, oip: undefined }, listed())).toBe(false);
  });
});

/** A runner that answers `nft -j list` with `table` (undefined: absent) and records every call. */
function fakeNft(table: unknown): { runner: Runner; calls: { args: readonly string[]; input?: string }[] } {
  const calls: { args: readonly string[]; input?: string }[] = [];
  const runner: Runner = async (file, args, options: RunOptions = {}) => {
    expect(file).toBe('nft');
    calls.push({ args, ...(options.input !== undefined ? { input: options.input } : {}) });
    if (args[0] !== '-j') return { stdout: '', stderr: '', exitCode: 0 };
    if (table === undefined) return { stdout: '', stderr: 'Error: No such file or directory; did you mean table ‘warren’ in family inet?', exitCode: 1 };
    return { stdout: JSON.stringify(table), stderr: '', exitCode: 0 };
  };
  return { runner, calls };
}

describe('applyGatewayNat / removeGatewayNat (what they ask nft)', () => {
  it('writes only when the table differs, deletes it when no hub is up', async () => {
    const absent = fakeNft(undefined);
    expect(await applyGatewayNat(absent.runner, input)).toBe('created');
    expect(absent.calls).toEqual([{ args: ['-j', 'list', 'table', 'ip', 'warren_gateway'] }, { args: ['-f', '-'], input: gatewayNatScript(input) }]);

    const same = fakeNft(listed());
    expect(await applyGatewayNat(same.runner, input)).toBe('unchanged');
    expect(same.calls).toHaveLength(1);

    const moved = fakeNft(listed());
    expect(await applyGatewayNat(moved.runner, { ...input, oip: '10.10.0.6' })).toBe('replaced');
    expect(moved.calls[1]!.input).toContain('snat to 10.10.0.6');

    const down = fakeNft(listed());
    expect(await applyGatewayNat(down.runner, { ...input, oip: undefined })).toBe('removed');
    expect(down.calls[1]).toEqual({ args: ['-f', '-'], input: gatewayNatRemovalScript() });
    const downAbsent = fakeNft(undefined);
    expect(await applyGatewayNat(downAbsent.runner, { ...input, oip: undefined })).toBe('absent');
    expect(downAbsent.calls).toHaveLength(1);

    expect(await removeGatewayNat(fakeNft(listed()).runner)).toBe('removed');
    expect(await removeGatewayNat(fakeNft(undefined).runner)).toBe('absent');
  });

  it('validates before reading anything', async () => {
    const f = fakeNft(listed());
    await expect(applyGatewayNat(f.runner, { ...input, egressDevice: '' })).rejects.toThrow(GatewayNatInputError);
    expect(f.calls).toEqual([]);
  });
});
