// Where the watcher looks: node records under <prefix>/agents/<node>, each checked
// against configgen's allocation under <prefix>/nodes/<node> (lib/allocation-record.ts).
// Both are read from one range, the whole prefix; other keys in it are passed over. Pure.
import { keyLayout, prefixEnd } from '../../lib/etcd/keys.js';

export interface AgentKeys {
  /** "<prefix>/": the range every watcher reads. */
  dir: string;
  /** The exclusive end of that range. */
  dirEnd: string;
  agent(node: string): string;
  /** The node whose record a key is, or undefined for any other key. */
  nodeOf(key: string): string | undefined;
  /** The node whose allocation a key is, or undefined for any other key. */
  allocationOf(key: string): string | undefined;
}

export const DEFAULT_PREFIX = '/warren';

export function agentKeys(prefix = DEFAULT_PREFIX): AgentKeys {
  const layout = keyLayout(prefix);
  const dir = `${layout.prefix}/`;
  const under = (d: string) => (key: string) => (key.startsWith(d) && key.length > d.length ? key.slice(d.length) : undefined);
  return {
    dir,
    dirEnd: prefixEnd(dir),
    agent: layout.agent,
    nodeOf: under(layout.agents),
    allocationOf: under(layout.nodes),
  };
}
