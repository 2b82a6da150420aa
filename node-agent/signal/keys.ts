// Where node records live: <prefix>/agents/<node>, beside configgen's <prefix>/nodes/<node>
// (the allocation) under the same prefix, which configgen's layout validates. Pure.
import { keyLayout, prefixEnd } from '../../lib/etcd/keys.js';

export interface AgentKeys {
  /** "<prefix>/agents/": the range every watcher reads. */
  dir: string;
  /** The exclusive end of that range. */
  dirEnd: string;
  agent(node: string): string;
  /** The node a key under `dir` names, or undefined for any other key. */
  nodeOf(key: string): string | undefined;
}

export const DEFAULT_PREFIX = '/warren';

export function agentKeys(prefix = DEFAULT_PREFIX): AgentKeys {
  const layout = keyLayout(prefix);
  const dir = layout.agents;
  return {
    dir,
    dirEnd: prefixEnd(dir),
    agent: layout.agent,
    nodeOf: (key) => (key.startsWith(dir) ? key.slice(dir.length) : undefined),
  };
}
