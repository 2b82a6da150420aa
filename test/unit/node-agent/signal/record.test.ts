import { describe, expect, it } from 'vitest';
import { NodeRecordError, RecordSecretError } from '../../../../node-agent/signal/errors.js';
import { parseNodeRecord, sameContent, serializeRecord, type NodeRecord } from '../../../../node-agent/signal/record.js';
import { recordOf } from './records.js';

const KEY = '/warren/agents/node-a';
const AT = '2025-03-01T10:00:00.000Z';
const valid = (): NodeRecord => ({ ...recordOf('node-a', 1, 'ZGnef1BzP8Lv92I0TLHjUHMmtNWkqjDVrtpmI9Bl9RU='), updatedAt: AT });
const stored = (r: unknown) => parseNodeRecord(KEY, JSON.stringify(r), 'node-a');

describe('parseNodeRecord', () => {
  it('reads back what serializeRecord wrote', () => {
    const r = { ...valid(), punch: { epoch: 3, at: '2025-03-01T10:00:05.250Z' } };
    expect(parseNodeRecord(KEY, serializeRecord(r), 'node-a')).toEqual(r);
  });

  it('canonicalizes addresses and drops fields it does not know (a newer agent may publish more)', () => {
    const r = stored({ ...valid(), hostAddress: 'fd00:0:0:0:0:0:0:5', podSubnet: 'fd00:244:0:1:0::/64',
      candidates: [{ kind: 'local', address: '::ffff:192.168.1.2', port: 51820, priority: 9 }], future: { x: 1 } });
    expect(r.hostAddress).toBe('fd00::5');
    expect(r.podSubnet).toBe('fd00:244:0:1::/64');
    expect(r.candidates).toEqual([{ kind: 'local', address: '192.168.1.2', port: 51820 }]);
    expect(r).not.toHaveProperty('future');
  });

  // Each malformed field, with the message naming the key, the field and the value.
  const cases: [string, (r: Record<string, unknown>) => unknown, string][] = [
    ['not an object', () => [1], 'field (whole record) is not a JSON object'],
    ['node missing', (r) => ({ ...r, node: undefined }), 'field node is missing'],
    ['node not a name', (r) => ({ ...r, node: 'Node_A' }), 'field node "Node_A" is not a Kubernetes node name'],
    ['key too short', (r) => ({ ...r, publicKey: 'abc=' }), 'field publicKey "abc=" is not a WireGuard public key (base64 of 32 bytes, 44 characters)'],
    ['key of 33 bytes', (r) => ({ ...r, publicKey: Buffer.alloc(33, 1).toString('base64') }), 'field publicKey'],
    ['host address', (r) => ({ ...r, hostAddress: '10.10.0.300' }), 'field hostAddress "10.10.0.300" is not an IP address'],
    ['pod subnet host bits', (r) => ({ ...r, podSubnet: '10.244.1.5/24' }), 'field podSubnet "10.244.1.5/24" is not a subnet: 10.244.1.5/24 has host bits set'],
    ['listen port', (r) => ({ ...r, listenPort: 0 }), 'field listenPort is 0, not a UDP port (1-65535)'],
    ['port as text', (r) => ({ ...r, listenPort: '51820' }), 'field listenPort is "51820", not a UDP port'],
    ['candidates not a list', (r) => ({ ...r, candidates: {} }), 'field candidates is {}, not a list'],
    ['candidate kind', (r) => ({ ...r, candidates: [{ kind: 'stun', address: '1.2.3.4', port: 1 }] }),
      'field candidates[0].kind is "stun", not one of local, reflexive, relay'],
    ['candidate address', (r) => ({ ...r, candidates: [{ kind: 'relay', address: 'turn.example.com', port: 1 }] }),
      'field candidates[0].address "turn.example.com" is not an IP address'],
    ['candidate port', (r) => ({ ...r, candidates: [{ kind: 'relay', address: '1.2.3.4', port: 65536 }] }),
      'field candidates[0].port is 65536, not a UDP port'],
    ['too many candidates', (r) => ({ ...r, candidates: Array(33).fill({ kind: 'local', address: '1.2.3.4', port: 1 }) }),
      'field candidates lists 33 candidates, more than 32'],
    ['nat missing', (r) => ({ ...r, nat: undefined }), 'field nat is undefined, not an object'],
    ['nat mapping', (r) => ({ ...r, nat: { mapping: 'symmetric' } }), 'field nat.mapping is "symmetric", not one of endpoint-independent'],
    ['punch epoch', (r) => ({ ...r, punch: { epoch: -1, at: AT } }), 'field punch.epoch is -1, not a whole number >= 0'],
    ['punch time', (r) => ({ ...r, punch: { epoch: 1, at: 'tomorrow' } }), 'field punch.at is "tomorrow", not an ISO 8601 UTC time'],
    ['updatedAt local time', (r) => ({ ...r, updatedAt: '2025-03-01T10:00:00+01:00' }), 'field updatedAt is "2025-03-01T10:00:00+01:00", not an ISO 8601'],
    ['another node\'s record', (r) => ({ ...r, node: 'node-b' }), 'field node is "node-b", not the key\'s node "node-a"'],
  ];
  it.each(cases)('refuses %s, naming the key and the field', (_, mutate, message) => {
    const run = () => stored(mutate(valid() as unknown as Record<string, unknown>));
    expect(run).toThrow(NodeRecordError);
    expect(run).toThrow(`etcd key ${KEY}: ${message}`);
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseNodeRecord(KEY, '{"node":', 'node-a')).toThrow(`etcd key ${KEY}: field (whole record) is not JSON: "{\\"node\\":"`);
  });

  it('refuses a stored record carrying a secret-named field: no Warren agent wrote it', () => {
    const err = (() => { try { stored({ ...valid(), nat: { mapping: 'unknown', presharedKey: 'x' } }); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(NodeRecordError);
    expect(err).toMatchObject({ where: `etcd key ${KEY}`, field: 'nat.presharedKey' });
  });
});

describe('serializeRecord', () => {
  it('writes known fields only, in a fixed order', () => {
    const text = serializeRecord({ ...valid(), extra: 1 } as NodeRecord);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(
      ['node', 'publicKey', 'hostAddress', 'podSubnet', 'listenPort', 'candidates', 'nat', 'updatedAt']);
  });

  it.each([
    ['privateKey', (r: NodeRecord) => ({ ...r, privateKey: 'ZGnef1BzP8Lv92I0TLHjUHMmtNWkqjDVrtpmI9Bl9RU=' })],
    ['wg.private_key', (r: NodeRecord) => ({ ...r, wg: { private_key: 'x' } })],
    ['candidates[1].secret', (r: NodeRecord) => ({ ...r, candidates: [r.candidates[0], { ...r.candidates[1], secret: 'x' }] })],
    ['turnPassword', (r: NodeRecord) => ({ ...r, turnPassword: 'x' })],
  ])('refuses a record with a field named like a secret (%s)', (field, mutate) => {
    const run = () => serializeRecord(mutate(valid()) as NodeRecord);
    expect(run).toThrow(RecordSecretError);
    expect(run).toThrow(`refusing to publish the record of node node-a: field ${field} is named like a secret`);
  });

  it('refuses an invalid local record, naming it', () => {
    expect(() => serializeRecord({ ...valid(), listenPort: 70000 })).toThrow('the local record of node node-a: field listenPort is 70000');
  });
});

describe('sameContent', () => {
  it('ignores updatedAt, not the candidates or a punch request', () => {
    const a = valid();
    expect(sameContent(a, { ...a, updatedAt: '2030-01-01T00:00:00Z' })).toBe(true);
    expect(sameContent(a, { ...a, candidates: a.candidates.slice(1) })).toBe(false);
    expect(sameContent(a, { ...a, punch: { epoch: 1, at: AT } })).toBe(false);
  });
});
