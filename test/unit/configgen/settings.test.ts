import { describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../../configgen/config-file.js';
import { ConfigError } from '../../../configgen/errors.js';
import { parseDuration, resolveAllocate, resolveStore, type Sources } from '../../../configgen/settings.js';

const required = { podCIDR: '10.244.0.0/16', nodeBits: '8' };

function sources(patch: Partial<Sources> = {}): Sources {
  return { flags: { ...required }, env: {}, file: {}, hostname: 'node-1', ...patch };
}

function refusal(s: Sources): string {
  try {
    resolveAllocate(s);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected resolveAllocate to refuse');
}

describe('resolveAllocate', () => {
  it('applies the defaults', () => {
    const c = resolveAllocate(sources());
    expect(c).toMatchObject({
      node: 'node-1', cniConfDir: '/etc/cni/net.d', stateDir: '/var/lib/warren', bridge: 'warren0', mtu: undefined,
      logFile: '/var/log/warren/cni.log', ovsdb: undefined, ipamDataDir: undefined,
    });
    expect(c.pool.params).toEqual({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
    expect(c.etcd).toMatchObject({ endpoints: 'http://127.0.0.1:2379', timeoutMs: 60_000 });
    expect(c.keys.prefix).toBe('/warren');
  });

  it('takes flags over the environment over the file over the defaults', () => {
    const file = parseConfigFile('/c.yaml', 'nodeBits: 6\nbridge: fromfile\nmtu: 1300\nstateDir: /file\n');
    const env = { WARREN_NODE_BITS: '7', WARREN_BRIDGE: 'fromenv', WARREN_MTU: '' };
    const c = resolveAllocate(sources({ flags: { podCIDR: '10.244.0.0/16', nodeBits: '9' }, env, file }));
    expect(c.pool.params.nodeBits).toBe(9);
    expect(c.bridge).toBe('fromenv');
    expect(c.mtu).toBe(1300); // an empty variable counts as unset
    expect(c.stateDir).toBe('/file');
    expect(c.cniConfDir).toBe('/etc/cni/net.d');
  });

  it('takes the node name from the flag, then NODE_NAME, then the lowercased hostname', () => {
    expect(resolveAllocate(sources({ flags: { ...required, nodeName: 'flag' }, env: { NODE_NAME: 'env' } })).node).toBe('flag');
    expect(resolveAllocate(sources({ env: { NODE_NAME: 'env' } })).node).toBe('env');
    expect(resolveAllocate(sources({ hostname: 'Worker-7' })).node).toBe('worker-7');
  });

  it('reads Evio\'s net-conf.json as it is', () => {
    const evio = JSON.stringify({
      cniVersion: '0.3.1', name: 'k8s-pod-network', type: 'evioPlugin', bridge: 'evioB1B111B', bridgeType: 'OVS', isGateway: true,
      isDefaultGateway: true, isIPMasq: true, nodeBits: '8', podCIDR: '10.244.0.0/16', dataStore: '10.0.0.5:42000', auth: false,
    });
    const c = resolveAllocate(sources({ flags: {}, file: parseConfigFile('/etc/evio/net-conf.json', evio) }));
    expect(c.pool.params).toMatchObject({ podCIDR: '10.244.0.0/16', nodeBits: 8 });
    expect(c.bridge).toBe('evioB1B111B');
    expect(c.etcd.endpoints).toBe('10.0.0.5:42000');
  });

  it.each([
    ['a missing pod CIDR', sources({ flags: { nodeBits: '8' } }), /--pod-cidr is required \(or WARREN_POD_CIDR, or podCIDR in the --config file\)/],
    ['non-numeric nodeBits', sources({ flags: { podCIDR: '10.244.0.0/16', nodeBits: 'eight' } }), /--node-bits "eight" is not a whole number/],
    ['non-numeric nodeBits from the environment', sources({ flags: { podCIDR: '10.244.0.0/16' }, env: { WARREN_NODE_BITS: '8x' } }), /WARREN_NODE_BITS "8x" is not a whole number/],
    ['nodeBits 0', sources({ flags: { ...required, nodeBits: '0' } }), /--node-bits 0 must be at least 1/],
    ['an invalid pod CIDR', sources({ flags: { ...required, podCIDR: '10.244.0.0' } }), /--pod-cidr "10.244.0.0" is not a CIDR/],
    ['overlapping pod and host CIDRs', sources({ flags: { ...required, hostCIDR: '10.244.0.0/24' } }), /--pod-cidr 10.244.0.0\/16 overlaps --host-cidr 10.244.0.0\/24/],
    ['a non-numeric MTU', sources({ flags: { ...required, mtu: 'big' } }), /--mtu "big" is not a whole number/],
    ['an MTU too small', sources({ flags: { ...required, mtu: '100' } }), /--mtu 100 must be from 576 to 65535/],
    ['a bridge name over 15 characters', sources({ flags: { ...required, bridge: 'a-very-long-bridge' } }), /--bridge "a-very-long-bridge" is longer than 15/],
    ['a node name with a slash', sources({ flags: { ...required, nodeName: 'a/b' } }), /--node-name "a\/b" is not a Kubernetes node name/],
    ['a relative conf dir', sources({ flags: { ...required, cniConfDir: 'net.d' } }), /--cni-conf-dir "net.d" must be an absolute path/],
    ['a bad etcd timeout', sources({ flags: { ...required, etcdTimeout: 'soon' } }), /--etcd-timeout "soon" is not a positive duration/],
    ['a zero etcd timeout', sources({ flags: { ...required, etcdTimeout: '0s' } }), /--etcd-timeout "0s" is not a positive duration/],
    ['an etcd prefix without slash', sources({ flags: { ...required, etcdPrefix: 'warren' } }), /--etcd-prefix: etcd prefix "warren" must start with "\/"/],
    ['an OVSDB address without scheme', sources({ flags: { ...required, ovsdb: '/run/db.sock' } }), /--ovsdb "\/run\/db.sock" must be an OVSDB address/],
    ['host bits in a file\'s podCIDR', sources({ flags: {}, file: parseConfigFile('/n.json', '{"podCIDR": "10.244.0.16/16", "nodeBits": "8"}') }),
      /podCIDR in \/n.json "10.244.0.16\/16" has host bits set/],
  ])('refuses %s, naming the field and value', (_, s, message) => {
    expect(refusal(s)).toMatch(message);
  });
});

describe('parseConfigFile', () => {
  it.each([
    ['an unknown field', 'podCidr: 10.244.0.0/16', /unknown field "podCidr" in \/f.yaml/],
    ['Evio\'s password auth', '{"auth": true}', /auth true in \/f.yaml: etcd password authentication is not supported/],
    ['a list', '- a\n- b', /must hold a mapping/],
    ['malformed text', '{"podCIDR": ', /neither JSON nor YAML/],
    ['two names for one setting', 'etcdEndpoints: a:1\ndataStore: b:2', /dataStore and etcdEndpoints in \/f.yaml set the same thing/],
  ])('refuses %s', (_, text, message) => {
    expect(() => parseConfigFile('/f.yaml', text)).toThrow(message);
  });

  it('accepts an empty file', () => {
    expect(parseConfigFile('/f.yaml', '')).toEqual({});
  });
});

describe('resolveStore', () => {
  it('takes endpoint lists from a file', () => {
    const file = parseConfigFile('/f.yaml', 'etcdEndpoints: [a:1, b:2]\netcdTimeout: 5');
    expect(resolveStore(sources({ file })).etcd).toMatchObject({ endpoints: ['a:1', 'b:2'], timeoutMs: 5000 });
  });
});

describe('parseDuration', () => {
  it.each([['500ms', 500], ['30s', 30_000], ['2m', 120_000], ['1.5', 1500], ['1h', 3_600_000], ['x', undefined], ['-1s', undefined]])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});
