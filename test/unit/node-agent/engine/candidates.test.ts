// What a peer's record gives path selection, which answered endpoint WireGuard gets, and
// what kind of endpoint it is (nodes sharing a LAN: issue 11 item 2).
import { describe, expect, it } from 'vitest';
import { endpointKind, peerCandidates, preferredSuccess } from '../../../../node-agent/engine/candidates.js';
import { DIRECT_LOST_MS } from '../../../../node-agent/engine/knobs.js';
import type { Candidate } from '../../../../node-agent/signal/record.js';

const lan = { address: '10.1.0.3', port: 51820 };
const reflexive = { address: '198.51.100.6', port: 2245 };
/** What a hairpinning router's masquerade makes of the peer's checks: its own LAN address. */
const hairpinned = { address: '10.1.0.1', port: 51820 };
const candidates: Candidate[] = [
  { kind: 'local', ...lan },
  { kind: 'reflexive', ...reflexive },
  { kind: 'relay', address: '192.0.2.10', port: 49160 },
];
const peer = peerCandidates({ candidates, nat: { mapping: 'endpoint-independent' } });

describe('peerCandidates', () => {
  it('tells the peer\'s own addresses from its NAT\'s mapping', () => {
    expect(peer).toMatchObject({ direct: [lan, reflexive], local: ['10.1.0.3:51820'], relay: { address: '192.0.2.10', port: 49160 } });
  });

  it('a public peer: its own address once, as local', () => {
    const pub = peerCandidates({ candidates: [{ kind: 'local', address: '198.51.100.2', port: 51820 }], nat: { mapping: 'endpoint-independent' } });
    expect(pub).toMatchObject({ direct: [{ address: '198.51.100.2', port: 51820 }], local: ['198.51.100.2:51820'] });
  });
});

describe('endpointKind', () => {
  it('lan for the peer\'s own private address, host for its own public one', () => {
    expect(endpointKind(peer, '10.1.0.3:51820')).toBe('lan');
    for (const a of ['192.168.4.7', '172.16.0.9', '100.64.3.2', '169.254.1.1']) {
      expect(endpointKind(peerCandidates({ candidates: [{ kind: 'local', address: a, port: 51820 }], nat: { mapping: 'unknown' } }), `${a}:51820`)).toBe('lan');
    }
    expect(endpointKind(peerCandidates({ candidates: [{ kind: 'local', address: '198.51.100.2', port: 51820 }], nat: { mapping: 'unknown' } }), '198.51.100.2:51820')).toBe('host');
  });

  it('reflexive for its published mapping, peer-reflexive for anything else that answered', () => {
    expect(endpointKind(peer, '198.51.100.6:2245')).toBe('reflexive');
    expect(endpointKind(peer, '10.1.0.1:51820')).toBe('peer-reflexive');
    expect(endpointKind(peer, '198.51.100.6:9999')).toBe('peer-reflexive');
  });
});

describe('preferredSuccess', () => {
  it('the peer\'s LAN address over its hairpinned and public ones, whichever answered last', () => {
    const got = preferredSuccess([
      { endpoint: lan, at: 1000 },
      { endpoint: reflexive, at: 1010 },
      { endpoint: hairpinned, at: 1020 },
    ], peer, 1100);
    expect(got).toEqual({ endpoint: lan, at: 1000 });
  });

  it('among endpoints through a NAT, the latest answer', () => {
    expect(preferredSuccess([{ endpoint: reflexive, at: 1000 }, { endpoint: hairpinned, at: 1020 }], peer, 1100)).toEqual({ endpoint: hairpinned, at: 1020 });
    expect(preferredSuccess([{ endpoint: hairpinned, at: 1020 }, { endpoint: reflexive, at: 1030 }], peer, 1100)).toEqual({ endpoint: reflexive, at: 1030 });
  });

  it('an answer older than DIRECT_LOST_MS counts for nothing: a LAN path that went silent gives way', () => {
    const successes = [{ endpoint: lan, at: 0 }, { endpoint: reflexive, at: 5000 }];
    expect(preferredSuccess(successes, peer, DIRECT_LOST_MS - 1)).toEqual({ endpoint: lan, at: 0 });
    expect(preferredSuccess(successes, peer, DIRECT_LOST_MS)).toEqual({ endpoint: reflexive, at: 5000 });
    expect(preferredSuccess(successes, peer, 5000 + DIRECT_LOST_MS)).toBeUndefined();
    expect(preferredSuccess([], peer, 0)).toBeUndefined();
  });
});
