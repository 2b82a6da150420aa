import { describe, expect, it } from 'vitest';
import { parseCniArgs, parseCniEnv } from '../../../cni/env.js';
import { interfaceNameProblem } from '../../../lib/names.js';
import { CniError } from '../../../cni/errors.js';

const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    return (e as CniError).cniCode;
  }
  return undefined;
}

describe('parseCniEnv', () => {
  it('reads a complete ADD environment', () => {
    const env = parseCniEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0' });
    expect(env).toMatchObject({ command: 'ADD', containerId: 'abc', netns: '/run/netns/x', ifname: 'eth0' });
    expect(env.path).toEqual(['/opt/cni/bin', '/usr/lib/cni']);
    expect(env.args).toEqual({ IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'web-0' });
  });

  it.each([
    ['missing CNI_COMMAND', { ...base, CNI_COMMAND: undefined }, /CNI_COMMAND is not set/],
    ['unknown CNI_COMMAND', { ...base, CNI_COMMAND: 'FROB' }, /"FROB" is unknown/],
    ['ADD without CNI_CONTAINERID', { ...base, CNI_CONTAINERID: undefined }, /CNI_CONTAINERID is required for ADD/],
    ['ADD without CNI_NETNS', { ...base, CNI_NETNS: '' }, /CNI_NETNS is required for ADD/],
    ['ADD without CNI_IFNAME', { ...base, CNI_IFNAME: undefined }, /CNI_IFNAME is required/],
    ['CHECK without CNI_NETNS', { ...base, CNI_COMMAND: 'CHECK', CNI_NETNS: undefined }, /CNI_NETNS is required for CHECK/],
    ['a container id with a slash', { ...base, CNI_CONTAINERID: '../etc' }, /CNI_CONTAINERID "..\/etc" is invalid/],
    ['an interface name over 15 bytes', { ...base, CNI_IFNAME: 'eth0123456789012' }, /longer than 15/],
    ['CNI_ARGS without "="', { ...base, CNI_ARGS: 'novalue' }, /not KEY=VALUE/],
  ])('rejects %s with code 4', (_, env, message) => {
    expect(() => parseCniEnv(env)).toThrow(message);
    expect(codeOf(() => parseCniEnv(env))).toBe(4);
  });

  it('lets DEL run without CNI_NETNS (the netns may be gone)', () => {
    expect(parseCniEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('');
  });

  it('needs nothing for VERSION and only CNI_PATH for GC and STATUS', () => {
    expect(parseCniEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
    expect(parseCniEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }).command).toBe('GC');
    expect(codeOf(() => parseCniEnv({ CNI_COMMAND: 'STATUS' }))).toBe(4);
  });
});

describe('interfaceNameProblem', () => {
  it.each([['eth0', undefined], ['', 'is empty'], ['.', 'is not allowed'], ['a/b', 'contains'], ['a b', 'contains'], ['x'.repeat(16), 'longer'],
    ['eth%d', '"%"'], ['à', 'printable ASCII'], ['a\u0000b', 'printable ASCII']])(
    '%j', (name, problem) => {
      const got = interfaceNameProblem(name);
      if (problem === undefined) expect(got).toBeUndefined();
      else expect(got).toContain(problem);
    });
});

describe('parseCniArgs', () => {
  it('keeps "=" inside values and skips empty pairs', () => {
    expect(parseCniArgs('A=b=c;;B=')).toEqual({ A: 'b=c', B: '' });
  });
});
