// daemonset/warren.yaml as users get it, with only the image reference and the endpoints
// of the emulated internet put in: a placeholder that is no longer in the file fails
// loudly, so the test cannot drift away from what is shipped.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';

export const WARREN_MANIFEST = resolve('daemonset/warren.yaml');

export interface ManifestValues {
  image: string;
  etcdEndpoints: string;
  /** "ip:port" of each STUN server. */
  stunServers: string[];
  turnServer: string;
}

const PLACEHOLDERS = {
  image: 'warren/warren-node:0.1.0',
  etcd: 'https://etcd.example.internal:2379',
  stun: '["203.0.113.10:3478", "203.0.113.11:3478"]',
  turn: '"203.0.113.10:3478"',
};

/** Pure: the shipped manifest with the values put in. */
export function renderManifest(shipped: string, v: ManifestValues): string {
  let text = shipped;
  const put = (placeholder: string, value: string): void => {
    if (!text.includes(placeholder)) throw new Error(`${WARREN_MANIFEST} no longer contains ${placeholder}: update test/helpers/kube/manifest.ts`);
    text = text.replaceAll(placeholder, value);
  };
  put(PLACEHOLDERS.image, v.image);
  put(PLACEHOLDERS.etcd, v.etcdEndpoints);
  put(PLACEHOLDERS.stun, JSON.stringify(v.stunServers));
  put(PLACEHOLDERS.turn, JSON.stringify(v.turnServer));
  return text;
}

export function readManifest(v: ManifestValues): string {
  return renderManifest(readFileSync(WARREN_MANIFEST, 'utf8'), v);
}

/** A setting of the ConfigMap warren-config (pod-cidr, host-cidr, agent.yaml...). */
export function configValue(manifest: string, key: string): string {
  const docs = YAML.parseAllDocuments(manifest).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> });
  const v = docs.find((d) => d.kind === 'ConfigMap' && d.metadata?.name === 'warren-config')?.data?.[key];
  if (v === undefined) throw new Error(`warren.yaml's warren-config has no ${key}`);
  return v;
}

/** The agent's config as the ConfigMap carries it: the systemd-style agent uses the same. */
export function agentConfigOf(manifest: string): Record<string, unknown> {
  return YAML.parse(configValue(manifest, 'agent.yaml')) as Record<string, unknown>;
}
