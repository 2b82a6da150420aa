// The CLI in-process: what a user sees before etcd is ever contacted.
import { describe, expect, it } from 'vitest';
import { runCli, type CliDeps } from '../../../configgen/cli.js';

async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const deps: CliDeps = {
    env,
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    hostname: 'node-1',
    runner: async () => {
      throw new Error('no command may run before the input is valid');
    },
  };
  const status = await runCli(argv, deps);
  return { status, stdout, stderr };
}

describe('warren-configgen CLI', () => {
  it('documents every exit status and environment variable in --help', async () => {
    const r = await cli(['--help']);
    expect(r.status).toBe(0);
    for (const s of ['0  success', '2  invalid input', '3  etcd unreachable', '4  pool full', '5  pool parameters differ', 'WARREN_POD_CIDR', 'NODE_NAME']) {
      expect(r.stdout).toContain(s);
    }
  });

  it.each([
    [['--pod-cidr', '10.244.0.0/16', '--node-bits', 'x'], /^warren-configgen: --node-bits "x" is not a whole number\n$/],
    [['--node-bits', '8'], /^warren-configgen: --pod-cidr is required/],
    [['--bogus'], /^warren-configgen: unknown option '--bogus'\n$/],
    [['release'], /^warren-configgen: required option '--node <name>' not specified\n$/],
    [['list', '--etcd-endpoints', 'nohost'], /^warren-configgen: etcd endpoint "nohost" must be host:port/],
    [['--pod-cidr', '10.244.0.0/16', '--node-bits', '8', '--etcd-cert', '/c.pem'], /give both --etcd-cert and --etcd-key/],
  ])('refuses %j with one line and exit status 2', async (argv, message) => {
    const r = await cli(argv);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('reads the environment', async () => {
    const r = await cli([], { WARREN_POD_CIDR: '10.244.0.0/16', WARREN_NODE_BITS: '0' });
    expect([r.status, r.stderr]).toEqual([2, 'warren-configgen: WARREN_NODE_BITS 0 must be at least 1\n']);
  });

  it('names an unreadable config file', async () => {
    const r = await cli(['--config', '/nonexistent/net-conf.json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^warren-configgen: config file \/nonexistent\/net-conf.json cannot be read: ENOENT/);
  });
});
