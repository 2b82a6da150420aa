import { describe, expect, it } from 'vitest';
import { ssKillArgs } from '../../../../node-agent/underlay/connections.js';

describe('ssKillArgs', () => {
  it('names the endpoint by address and port', () => {
    expect(ssKillArgs('http://192.0.2.10:2379')).toEqual(['-K', '-tn', 'dst', '192.0.2.10', 'dport', '=', ':2379']);
    expect(ssKillArgs('https://[2001:db8::1]:2379')).toEqual(['-K', '-tn', 'dst', '[2001:db8::1]', 'dport', '=', ':2379']);
    expect(ssKillArgs('https://192.0.2.10')).toEqual(['-K', '-tn', 'dst', '192.0.2.10', 'dport', '=', ':443']);
  });

  it('leaves host names alone: ss filters by address', () => {
    expect(ssKillArgs('https://etcd.example:2379')).toBeUndefined();
    expect(ssKillArgs('not a url')).toBeUndefined();
  });
});
