import { describe, expect, it } from 'vitest';
import { JsonStreamSplitter } from '../../../lib/ovsdb/json-stream.js';
import { attachPortOps, transactionFailure } from '../../../lib/ovsdb/ops.js';

describe('JsonStreamSplitter', () => {
  it('splits messages sent back to back, across chunk boundaries', () => {
    const s = new JsonStreamSplitter();
    // As ovsdb-server wrote them: an echo request, then a reply, no delimiter.
    const wire = '{"id":"echo","method":"echo","params":[]}{"id":1,"result":[{"rows":[{"name":"a}\\"{"}]}],"error":null}';
    const out: string[] = [];
    for (let i = 0; i < wire.length; i += 7) out.push(...s.push(wire.slice(i, i + 7)));
    expect(out.map((t) => JSON.parse(t))).toEqual([
      { id: 'echo', method: 'echo', params: [] },
      { id: 1, result: [{ rows: [{ name: 'a}"{' }] }], error: null },
    ]);
  });

  it('keeps a partial message until it completes', () => {
    const s = new JsonStreamSplitter();
    expect(s.push('{"a":[1,2')).toEqual([]);
    expect(s.push(']}\n{"b":')).toEqual(['{"a":[1,2]}']);
    expect(s.push('3}')).toEqual(['{"b":3}']);
  });
});

describe('OVSDB operations', () => {
  it('attaches a tagged port to an existing bridge, or aborts if the bridge is missing', () => {
    const ops = attachPortOps({ bridge: 'warren0', name: 'wrn1', externalIds: { 'cni-container-id': 'c1' }, bridgeMtu: 1400 });
    expect(ops[0]).toMatchObject({ op: 'wait', table: 'Bridge', timeout: 0, until: '==', rows: [{ name: 'warren0' }] });
    expect(ops[1]).toMatchObject({ op: 'insert', table: 'Interface', row: { name: 'wrn1', external_ids: ['map', [['cni-container-id', 'c1']]] } });
    expect(ops[3]).toMatchObject({ op: 'mutate', table: 'Bridge', mutations: [['ports', 'insert', ['set', [['named-uuid', 'port']]]]] });
  });

  it('names the operation that failed', () => {
    const ops = attachPortOps({ bridge: 'b', name: 'p', externalIds: {}, bridgeMtu: 1500 });
    expect(transactionFailure(ops, [{ error: 'timed out', details: '"wait" timed out' }])).toBe('wait Bridge: timed out ("wait" timed out)');
    expect(transactionFailure(ops, [{}, { uuid: ['uuid', 'x'] }, {}, { count: 1 }, { count: 1 }, { error: 'constraint violation', details: 'duplicate name' }]))
      .toBe('commit: constraint violation (duplicate name)');
    expect(transactionFailure(ops, [{}, {}, {}, {}, {}])).toBeUndefined();
  });
});
