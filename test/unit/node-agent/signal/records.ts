// Valid node records for the signalling tests, with real X25519 key pairs so a test can
// look for the private half in what was published.
import { generateKeyPairSync } from 'node:crypto';
import type { NodeRecordContent } from '../../../../node-agent/signal/record.js';

export interface TestKeyPair {
  publicKey: string;
  privateKey: string;
}

export function keyPair(): TestKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = (jwk: { x?: string; d?: string }, part: 'x' | 'd') => Buffer.from(jwk[part]!, 'base64url').toString('base64');
  return { publicKey: raw(publicKey.export({ format: 'jwk' }), 'x'), privateKey: raw(privateKey.export({ format: 'jwk' }), 'd') };
}

/** Node number `i`: its own host address, pod subnet and candidates. */
export function recordOf(node: string, i: number, publicKey = keyPair().publicKey): NodeRecordContent {
  return {
    node,
    publicKey,
    hostAddress: `10.10.${i >> 8}.${(i & 255) + 1}`,
    podSubnet: `10.244.${i}.0/24`,
    listenPort: 51820,
    candidates: [
      { kind: 'local', address: `192.168.${i}.2`, port: 51820 },
      { kind: 'reflexive', address: '203.0.113.7', port: 40000 + i },
      { kind: 'relay', address: '198.51.100.1', port: 50000 + i },
    ],
    nat: { mapping: 'endpoint-independent' },
  };
}

/** The allocation configgen records for node number `i` (the subnet and address recordOf gives it). */
export function allocationOf(node: string, i: number, prefix = '/warren'): { key: string; value: string } {
  const r = recordOf(node, i, 'unused');
  return { key: `${prefix}/nodes/${node}`, value: JSON.stringify({ node, index: i, podSubnet: r.podSubnet, gateway: `10.244.${i}.1`, hostAddress: r.hostAddress }) };
}
