import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../configgen/errors.js';
import { agentKeys } from '../../../../node-agent/signal/keys.js';

describe('agentKeys', () => {
  it('puts records under <prefix>/agents/, beside configgen\'s keys', () => {
    const k = agentKeys();
    expect(k.dir).toBe('/warren/agents/');
    expect(k.dirEnd).toBe('/warren/agents0');
    expect(k.agent('node-a')).toBe('/warren/agents/node-a');
    expect(k.nodeOf('/warren/agents/node-a')).toBe('node-a');
    expect(k.nodeOf('/warren/nodes/node-a')).toBeUndefined();
  });

  it('takes another prefix, trailing slash or not, and refuses one configgen would refuse', () => {
    expect(agentKeys('/site-2/').agent('n')).toBe('/site-2/agents/n');
    expect(() => agentKeys('warren')).toThrow(ConfigError);
  });
});
