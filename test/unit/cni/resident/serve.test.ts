import { describe, expect, it } from 'vitest';
import { needsVsctl, pathsToCompare, requestRunner, unseen } from '../../../../cni/resident/serve.js';
import { pathIdentity } from '../../../../lib/path-identity.js';
import type { Runner, RunOptions } from '../../../../lib/runner.js';

describe('needsVsctl', () => {
  const has = (names: string[]) => (name: string) => names.includes(name);
  it('is true for CHECK, GC, STATUS and the ADD that makes the bridge; false for DEL and ADD on an existing bridge', () => {
    for (const verb of ['CHECK', 'GC', 'STATUS']) expect(needsVsctl(verb, '{}', has(['warren0']))).toBe(true);
    expect(needsVsctl('ADD', '{}', has([]))).toBe(true);
    expect(needsVsctl('ADD', '{}', has(['warren0']))).toBe(false);
    expect(needsVsctl('ADD', '{"bridge":"br1"}', has(['warren0']))).toBe(true);
    expect(needsVsctl('DEL', '{}', has([]))).toBe(false);
    expect(needsVsctl('ADD', 'not json', has([]))).toBe(false);
  });
});

describe('requestRunner', () => {
  it('gives commands the executable\'s environment, and runs plugins from CNI_PATH through the IPAM runner', async () => {
    const seen: { via: string; file: string; options?: RunOptions }[] = [];
    const fake = (via: string): Runner => async (file, _args, options) => {
      seen.push({ via, file, options });
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const run = requestRunner(fake('plain'), fake('ipam'), { CNI_PATH: '/opt/cni/bin/:/usr/lib/cni', CNI_ARGS: 'IP=10.0.0.9' });
    await run('ip', ['link'], { env: { X: '1' } });
    await run('/opt/cni/bin/host-local', []);
    await run('/usr/lib/cni/../cni/host-local', []);
    expect(seen.map((s) => s.via)).toEqual(['plain', 'ipam', 'ipam']);
    expect(seen[0]!.options).toMatchObject({ env: { CNI_ARGS: 'IP=10.0.0.9', X: '1' }, replaceEnv: true });
  });
});

describe('pathsToCompare and unseen', () => {
  const req = { env: { CNI_PATH: '/usr/lib/cni', CNI_NETNS: '/run/netns/p' }, stdin: '{"name":"n","ipam":{"type":"host-local"}}', sentAt: 0, mntns: 'mnt:[1]' };
  it('asks nothing in the same mount namespace, and the verb\'s paths from another', () => {
    expect(pathsToCompare(req, 'mnt:[1]')).toEqual([]);
    expect(pathsToCompare(req, 'mnt:[2]')).toEqual(['/usr/lib/cni', '/run/netns/p', '/var/lib/cni/networks/n']);
    expect(pathsToCompare({ ...req, stdin: 'not json' }, 'mnt:[2]')).toEqual(['/usr/lib/cni', '/run/netns/p']);
  });
  it('refuses a path the executable sees as another file, or did not describe', () => {
    const here = pathIdentity('/usr');
    expect(unseen(['/usr'], { '/usr': here })).toBeUndefined();
    expect(unseen(['/usr'], { '/usr': '1:2' })).toMatch(/\/usr is not here what it is for the executable/);
    expect(unseen(['/usr'], {})).toMatch(/\/usr/);
  });
});
