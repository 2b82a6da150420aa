import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../configgen/errors.js';
import { agentKeys } from '../../../../node-agent/signal/keys.js';

describe('agentKeys', () => {
  it('puts records under <prefix>/agents/, beside configgen\'s keys, and reads both from the whole prefix', () => {
    const k = agentKeys();
    expect(k.dir).toBe('/warren/');
    expect(k.dirEnd).toBe('/warren0');
    expect(k.agent('node-a')).toBe('/warren/agents/node-a');
    expect(k.nodeOf('/warren/agents/node-a')).toBe('node-a');
    expect(k.nodeOf('/warren/nodes/node-a')).toBeUndefined();
    expect(k.allocationOf('/warren/nodes/node-a')).toBe('node-a');
    expect(k.allocationOf('/warren/agents/node-a')).toBeUndefined();
    expect(k.nodeOf('/warren/agents/')).toBeUndefined();
  });

  it('takes another prefix, trailing slash or not, and refuses one configgen would refuse', () => {
    expect(agentKeys('/site-2/').agent('n')).toBe('/site-2/agents/n');
    expect(() => agentKeys('warren')).toThrow(ConfigError);
  });
});
