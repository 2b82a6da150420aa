// The plugin in-process: every malformed input gets the spec's error JSON with its
// code, and the process runner (the only way the plugin changes the node) is never called.
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../../cni/dispatch.js';
import type { Runner } from '../../../lib/runner.js';

const conf = { cniVersion: '1.0.0', name: 'warren', type: 'warren', podCIDR: '10.244.0.0/16', ipam: { type: 'host-local' } };
const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/nope', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };

async function call(e: Record<string, string | undefined>, stdin: string) {
  const calls: string[] = [];
  const runner: Runner = async (file, args) => {
    calls.push([file, ...args].join(' '));
    return { stdout: '', stderr: '', exitCode: 0 };
  };
  let out = '';
  const code = await dispatch({ env: e, stdin, stdout: (t) => (out += t), runner, cacheDir: '/nonexistent' });
  return { code, out: out ? (JSON.parse(out) as Record<string, unknown>) : undefined, calls };
}

describe('dispatch', () => {
  it('answers VERSION with every supported version', async () => {
    const r = await call({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(r.code).toBe(0);
    expect(r.out).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it.each([
    ['malformed JSON', 6, env, '{"cniVersion":'],
    ['a config that is a list', 6, env, '[]'],
    ['no CNI_COMMAND', 4, { ...env, CNI_COMMAND: undefined }, JSON.stringify(conf)],
    ['an unknown CNI_COMMAND', 4, { ...env, CNI_COMMAND: 'UPDATE' }, JSON.stringify(conf)],
    ['ADD without CNI_CONTAINERID', 4, { ...env, CNI_CONTAINERID: undefined }, JSON.stringify(conf)],
    ['ADD without CNI_NETNS', 4, { ...env, CNI_NETNS: undefined }, JSON.stringify(conf)],
    ['an unsupported cniVersion', 1, env, JSON.stringify({ ...conf, cniVersion: '2.0.0' })],
    ['CHECK on a 0.3.1 config', 1, { ...env, CNI_COMMAND: 'CHECK' }, JSON.stringify({ ...conf, cniVersion: '0.3.1' })],
    ['GC on a 1.0.0 config', 1, { ...env, CNI_COMMAND: 'GC' }, JSON.stringify(conf)],
    ['STATUS on a 0.4.0 config', 1, { ...env, CNI_COMMAND: 'STATUS' }, JSON.stringify({ ...conf, cniVersion: '0.4.0' })],
    ['a bad MTU', 7, env, JSON.stringify({ ...conf, mtu: -1 })],
    ['a bridge name too long', 7, env, JSON.stringify({ ...conf, bridge: 'a-very-long-bridge' })],
    ['an unknown field', 2, env, JSON.stringify({ ...conf, bridgeName: 'x' })],
    ['a netns that does not exist', 3, env, JSON.stringify(conf)],
  ])('rejects %s with code %i and touches nothing', async (_, code, e, stdin) => {
    const r = await call(e, stdin);
    expect(r.code).toBe(1);
    expect(r.out).toMatchObject({ code });
    expect(typeof r.out!.msg).toBe('string');
    expect(r.calls).toEqual([]);
  });

  it('reports errors in the config version, or the newest when the config is unreadable', async () => {
    expect((await call(env, JSON.stringify({ ...conf, cniVersion: '0.4.0', mtu: 1 }))).out!.cniVersion).toBe('0.4.0');
    expect((await call(env, 'garbage')).out!.cniVersion).toBe('1.1.0');
  });

  it('fails STATUS with code 50 when the IPAM plugin is not on CNI_PATH', async () => {
    const r = await call({ CNI_COMMAND: 'STATUS', CNI_PATH: '/nonexistent' }, JSON.stringify({ ...conf, cniVersion: '1.1.0' }));
    expect(r.out).toMatchObject({ code: 50, msg: expect.stringContaining('host-local') });
  });

  it('turns an unexpected failure into a typed error, never a stack trace', async () => {
    const runner: Runner = async () => {
      throw new TypeError('cannot read properties of undefined');
    };
    let out = '';
    const code = await dispatch({ env: { CNI_COMMAND: 'STATUS', CNI_PATH: '/usr/lib/cni' }, stdin: JSON.stringify({ ...conf, cniVersion: '1.1.0' }), stdout: (t) => (out += t), runner });
    expect(code).toBe(1);
    expect(JSON.parse(out)).toMatchObject({ code: 50 });
    expect(out).not.toContain('    at ');
  });
});
