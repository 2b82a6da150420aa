// The manifests cannot run here (no kubelet, no running systemd), but what Warren's own
// programs read from them can be checked: the agent config in the ConfigMap is one the
// agent accepts, and systemd's own checker accepts the agent's unit.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execRunner } from '../../lib/runner.js';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseAgentConfig } from '../../node-agent/config.js';

const docs = YAML.parseAllDocuments(readFileSync('daemonset/warren.yaml', 'utf8')).map((d) => d.toJS() as Record<string, any>);

describe('daemonset/warren.yaml', () => {
  it('parses as YAML, every document', () => {
    expect(docs.length).toBeGreaterThan(3);
  });

  it('carries an agent config the agent accepts, with the node name from the downward API', () => {
    const cm = docs.find((d) => d?.kind === 'ConfigMap');
    const config = parseAgentConfig('warren-config/agent.yaml', cm!.data['agent.yaml'], { NODE_NAME: 'worker-1' });
    expect(config.nodeName).toBe('worker-1');
    expect(config.turn?.passwordFile).toBe('/etc/warren/turn/password');
    const ds = docs.find((d) => d?.kind === 'DaemonSet');
    const agent = ds!.spec.template.spec.containers.find((c: { name: string }) => c.name === 'agent');
    expect(agent.command).toEqual(['/warren/bin/warren-agent', 'run', '--config', '/etc/warren/agent/agent.yaml']);
    expect(agent.env.some((e: { name: string; valueFrom?: unknown }) => e.name === 'NODE_NAME' && e.valueFrom)).toBe(true);
  });
});

describe('daemonset/warren-agent.service', () => {
  const unit = readFileSync('daemonset/warren-agent.service', 'utf8');
  const setting = (key: string) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

  it('stops only the agent, so that wireguard-go outlives a restart, and restarts it always', () => {
    expect(setting('KillMode')).toEqual(['process']);
    expect(setting('Restart')).toEqual(['always']);
    expect(setting('ExecStart')).toEqual(['/usr/local/bin/warren-agent run --config /etc/warren/agent.yaml']);
  });

  it('passes systemd-analyze verify with the built agent in place of the installed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-unit-'));
    try {
      const file = join(dir, 'warren-agent.service');
      writeFileSync(file, unit.replaceAll('/usr/local/bin/warren-agent', resolve('dist/bin/warren-agent')));
      const r = await execRunner('systemd-analyze', ['verify', file], { allowFailure: true });
      expect(r.stderr, r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
