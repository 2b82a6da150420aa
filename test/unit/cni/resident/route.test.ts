import { describe, expect, it } from 'vitest';
import { delFirst, residentSocketOf } from '../../../../cni/resident/route.js';

const conf = (patch: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'warren', ipam: { type: 'host-local' }, ...patch });

describe('residentSocketOf', () => {
  it('tries the default socket, or the one the config names', () => {
    expect(residentSocketOf('ADD', conf())).toBe('/run/warren/cni.sock');
    expect(residentSocketOf('DEL', conf({ residentSocket: '/run/x/cni.sock' }))).toBe('/run/x/cni.sock');
    // The server answers a missing or unknown verb with the same error the executable would.
    expect(residentSocketOf(undefined, conf())).toBe('/run/warren/cni.sock');
  });

  it('works standalone for VERSION, an unreadable config and an unusable socket path (whose error the standalone path reports)', () => {
    expect(residentSocketOf('VERSION', conf())).toBeUndefined();
    expect(residentSocketOf('ADD', '{"cniVersion":')).toBeUndefined();
    expect(residentSocketOf('ADD', '[]')).toBeUndefined();
    expect(residentSocketOf('ADD', 'null')).toBeUndefined();
    expect(residentSocketOf('ADD', conf({ residentSocket: 'relative.sock' }))).toBeUndefined();
    expect(residentSocketOf('ADD', conf({ residentSocket: 7 }))).toBeUndefined();
  });
});

describe('delFirst', () => {
  it('clears what a server may have begun before an ADD is redone, and only then', () => {
    expect(delFirst('ADD', true)).toBe(true);
    expect(delFirst('ADD', false)).toBe(false);
    for (const verb of ['DEL', 'CHECK', 'GC', 'STATUS', undefined]) expect(delFirst(verb, true)).toBe(false);
  });
});
