import { describe, expect, it } from 'vitest';
import { delFirst, residentRoute } from '../../../../cni/resident/route.js';

const conf = (patch: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'warren', ipam: { type: 'host-local' }, ...patch });

describe('residentRoute', () => {
  it('tries the default socket, or the one the config names', () => {
    expect(residentRoute('ADD', conf())?.socket).toBe('/run/warren/cni.sock');
    expect(residentRoute('DEL', conf({ residentSocket: '/run/x/cni.sock' }))?.socket).toBe('/run/x/cni.sock');
    // The server answers a missing or unknown verb with the same error the executable would.
    expect(residentRoute(undefined, conf())?.socket).toBe('/run/warren/cni.sock');
  });

  it('works standalone for VERSION, an unreadable config and an unusable socket path (whose error the standalone path reports)', () => {
    expect(residentRoute('VERSION', conf())).toBeUndefined();
    expect(residentRoute('ADD', '{"cniVersion":')).toBeUndefined();
    expect(residentRoute('ADD', '[]')).toBeUndefined();
    expect(residentRoute('ADD', 'null')).toBeUndefined();
    expect(residentRoute('ADD', conf({ residentSocket: 'relative.sock' }))).toBeUndefined();
    expect(residentRoute('ADD', conf({ residentSocket: 7 }))).toBeUndefined();
  });
});

describe('delFirst', () => {
  it('clears what a server may have begun before an ADD is redone, and only then', () => {
    expect(delFirst('ADD', true)).toBe(true);
    expect(delFirst('ADD', false)).toBe(false);
    for (const verb of ['DEL', 'CHECK', 'GC', 'STATUS', undefined]) expect(delFirst(verb, true)).toBe(false);
  });
});
