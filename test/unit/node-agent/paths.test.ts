import { describe, expect, it } from 'vitest';
import { countPaths, pathSummary, peerPath } from '../../../node-agent/paths.js';

describe('peerPath', () => {
  it('shows the engine\'s phase as it is, "unknown" for a peer the engine has not seen', () => {
    for (const phase of ['direct', 'relayed', 'punching', 'checking', 'new'] as const) expect(peerPath({ phase })).toEqual({ path: phase });
    expect(peerPath(undefined)).toEqual({ path: 'unknown' });
    expect(peerPath({ phase: 'direct', via: 'lan' })).toEqual({ path: 'direct', via: 'lan' });
  });

  it('says how a relayed peer\'s packets reach this node\'s TURN server', () => {
    expect(peerPath({ phase: 'relayed' }, 'tls')).toEqual({ path: 'relayed', via: 'tls' });
    expect(peerPath({ phase: 'direct', via: 'reflexive' }, 'tls')).toEqual({ path: 'direct', via: 'reflexive' });
    expect(peerPath({ phase: 'checking' }, 'tls')).toEqual({ path: 'checking' });
  });

  it('says in words why a peer has no path', () => {
    expect(peerPath({ phase: 'none', reason: 'no-own-relay' })).toEqual({ path: 'none', reason: 'no direct path, and this node has no TURN relay' });
    expect(peerPath({ phase: 'none', reason: 'no-peer-relay' })).toEqual({ path: 'none', reason: 'no direct path, and the peer published no TURN relay' });
    expect(peerPath({ phase: 'none', reason: 'relay-link-not-open' })).toEqual({ path: 'none', reason: 'no direct path, and the relay link is not open yet' });
  });

  it('counts such a peer as none in the metrics and the Node annotation', () => {
    const paths = [peerPath({ phase: 'none', reason: 'no-own-relay' }).path, 'direct', 'relayed'];
    expect(countPaths(paths)).toMatchObject({ direct: 1, relayed: 1, none: 1 });
    expect(pathSummary(paths)).toBe('direct=1,relayed=1,none=1');
  });
});
