// The manifests cannot run here (no kubelet), but what Warren's own programs read from
// them can be checked: the agent config in the ConfigMap is one the agent accepts.
import { readFileSync } from 'node:fs';
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
