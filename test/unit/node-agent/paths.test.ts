import { describe, expect, it } from 'vitest';
import { countPaths, pathSummary, truePath } from '../../../node-agent/paths.js';

describe('truePath', () => {
  const both = { own: true, peer: true };

  it('passes every engine phase through while a path exists or is being tried', () => {
    for (const phase of ['direct', 'punching', 'checking']) expect(truePath(phase, false, both)).toEqual({ path: phase });
    expect(truePath('relayed', true, both)).toEqual({ path: 'relayed' });
  });

  it('calls the relayed phase without an open relay link no path, and says why', () => {
    expect(truePath('relayed', false, { own: false, peer: true })).toEqual({ path: 'none', reason: 'no direct path, and this node has no TURN relay' });
    expect(truePath('relayed', false, { own: true, peer: false })).toEqual({ path: 'none', reason: 'no direct path, and the peer published no TURN relay' });
    expect(truePath('relayed', false, both)).toEqual({ path: 'none', reason: 'no direct path, and the relay link is not open yet' });
  });

  it('counts such a peer as none in the metrics and the Node annotation', () => {
    const paths = [truePath('relayed', false, { own: false, peer: true }).path, 'direct', 'relayed'];
    expect(countPaths(paths)).toMatchObject({ direct: 1, relayed: 1, none: 1 });
    expect(pathSummary(paths)).toBe('direct=1,relayed=1,none=1');
  });
});
