import { describe, expect, it } from 'vitest';
import { decodeConfig, parseConfig } from '../../../cni/config.js';
import type { CniError } from '../../../cni/errors.js';

const valid = {
  cniVersion: '1.0.0', name: 'warren', type: 'warren', mtu: 1420, podCIDR: '10.244.0.0/16',
  ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24' }]] },
};

function failure(raw: Record<string, unknown>): { code: number; msg: string } {
  try {
    parseConfig(raw);
  } catch (e) {
    return { code: (e as CniError).cniCode, msg: (e as Error).message };
  }
  throw new Error('expected parseConfig to fail');
}

describe('parseConfig', () => {
  it('applies the defaults', () => {
    const c = parseConfig({ cniVersion: '1.1.0', name: 'n', type: 'warren', ipam: { type: 'host-local' } });
    expect(c).toMatchObject({ bridge: 'warren0', isGateway: true, ipMasq: false, mtu: undefined, podCIDR: undefined, residentSocket: '/run/warren/cni.sock' });
  });

  it('masquerades by default once the pod CIDR is known', () => {
    const c = parseConfig(valid);
    expect(c.ipMasq).toBe(true);
    expect(c.podCIDR).toEqual({ network: '10.244.0.0', prefix: 16, family: 4 });
  });

  it('accepts what a runtime adds (runtimeConfig, args, prevResult, cni.dev/*)', () => {
    expect(() => parseConfig({ ...valid, runtimeConfig: {}, args: {}, prevResult: {}, 'cni.dev/valid-attachments': [] })).not.toThrow();
  });

  it.each([
    ['an unsupported cniVersion', { cniVersion: '0.2.0' }, 1, /cniVersion 0.2.0 is not supported/],
    ['a cniVersion that is no version', { cniVersion: 7 }, 1, /not a version/],
    ['an unknown field', { mut: 1400 }, 2, /unsupported field "mut" with value 1400/],
    ['a missing name', { name: '' }, 7, /^name/],
    ['another plugin type', { type: 'bridge' }, 7, /type "bridge" must be "warren"/],
    ['an MTU of 0', { mtu: 0 }, 7, /mtu 0 must be a whole number/],
    ['a fractional MTU', { mtu: 1400.5 }, 7, /mtu 1400.5/],
    ['an MTU as a string', { mtu: '1400' }, 7, /mtu "1400"/],
    ['an MTU above 65535', { mtu: 70000 }, 7, /mtu 70000/],
    ['a bridge name over 15 characters', { bridge: 'warren-bridge-000' }, 7, /bridge "warren-bridge-000" is longer than 15/],
    ['a bridge name with a slash', { bridge: 'a/b' }, 7, /bridge "a\/b"/],
    ['a pod CIDR that is not one', { podCIDR: '10.244.0.0/33' }, 7, /podCIDR "10.244.0.0\/33" is invalid/],
    ['a pod CIDR with host bits', { podCIDR: '10.244.1.0/16' }, 7, /host bits set/],
    ['ipMasq without pod CIDR', { podCIDR: undefined, ipMasq: true }, 7, /ipMasq true needs podCIDR/],
    ['isGateway as a string', { isGateway: 'yes' }, 7, /isGateway "yes" must be true or false/],
    ['no ipam', { ipam: undefined }, 7, /ipam undefined must be an object/],
    ['an ipam type with a path', { ipam: { type: '../bin/sh' } }, 7, /ipam.type/],
    ['a relative log file', { logFile: 'cni.log' }, 7, /logFile "cni.log" must be an absolute path/],
    ['an OVSDB address without scheme', { ovsdb: '/run/db.sock' }, 7, /ovsdb/],
    ['an OVSDB port out of range', { ovsdb: 'tcp:127.0.0.1:99999' }, 7, /ovsdb "tcp:127.0.0.1:99999"/],
    ['an OVSDB TCP address without port', { ovsdb: 'tcp:127.0.0.1' }, 7, /ovsdb/],
    ['a relative resident socket', { residentSocket: 'run/cni.sock' }, 7, /residentSocket "run\/cni.sock" must be an absolute path/],
    ['a resident socket that is no string', { residentSocket: true }, 7, /residentSocket true must be an absolute path/],
    ['a resident socket path too long for a unix socket', { residentSocket: `/${'x'.repeat(96)}` }, 7, /at most 96 bytes/],
    ['a valid attachment that is none', { 'cni.dev/valid-attachments': [null] }, 7, /cni.dev\/valid-attachments \[null\] must be a list of/],
  ])('rejects %s', (_, patch, code, msg) => {
    const f = failure({ ...valid, ...patch });
    expect(f.code).toBe(code);
    expect(f.msg).toMatch(msg);
  });
});

describe('decodeConfig', () => {
  it('reports malformed JSON with code 6', () => {
    expect(() => decodeConfig('{"cniVersion": ')).toThrow(expect.objectContaining({ cniCode: 6 }));
    expect(() => decodeConfig('[1,2]')).toThrow(expect.objectContaining({ cniCode: 6 }));
  });

  it('refuses with code 6 a config nested too deeply to encode again', () => {
    const deep = `{"args":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => decodeConfig(deep)).toThrow(expect.objectContaining({ cniCode: 6, message: 'network configuration is nested too deeply' }));
  });
});
