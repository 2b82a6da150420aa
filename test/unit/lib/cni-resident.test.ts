import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CLEAR_FIRST_ENV, DEFAULT_RESIDENT_SOCKET, encodeLine, FALLBACK_ENV, LineDecoder, MAX_REQUEST_BYTES, MAX_SOCKET_PATH, parseRequest, parseViews, RESIDENT_BOUNDS, sharedPaths,
} from '../../../lib/cni-resident.js';

describe('the resident wire format', () => {
  it('carries a request whose stdin and environment hold newlines, split across chunks', () => {
    const req = { env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'a=b\nc' }, stdin: '{\n"cniVersion": "1.0.0"\n}', sentAt: 1, mntns: 'mnt:[1]' };
    const line = encodeLine(req);
    const d = new LineDecoder();
    expect(d.push(line.slice(0, 10))).toEqual([]);
    const [got] = d.push(line.slice(10));
    expect(parseRequest(got!)).toEqual(req);
  });

  it('rejects what is not a request or a message', () => {
    expect(parseRequest('{"env":{"A":1},"stdin":"","sentAt":1,"mntns":""}')).toBeUndefined();
    expect(parseRequest('{"env":{},"stdin":"","sentAt":"1","mntns":""}')).toBeUndefined();
    expect(parseRequest('not json')).toBeUndefined();
    expect(parseViews('{"t":"views","views":{"/run/netns/p":"4:4026532"}}')).toEqual({ '/run/netns/p': '4:4026532' });
    expect(parseViews('{"t":"views","views":{"/run/netns/p":4}}')).toBeUndefined();
    expect(parseViews('{"t":"beat"}')).toBeUndefined();
  });

  it('bounds a line that never ends', () => {
    const d = new LineDecoder(8);
    expect(() => d.push('x'.repeat(9))).toThrow(RangeError);
  });

  it('names the paths a verb relies on: CNI_PATH, the netns, host-local\'s store', () => {
    expect(sharedPaths({ CNI_PATH: '/opt/cni/bin:relative', CNI_NETNS: '/run/netns/p' }, { name: 'k8s', ipam: { type: 'host-local' } }))
      .toEqual(['/opt/cni/bin', '/run/netns/p', '/var/lib/cni/networks/k8s']);
    expect(sharedPaths({ CNI_PATH: '/opt/cni/bin' }, { name: '../x', ipam: { type: 'host-local', dataDir: '/srv/ipam' } })).toEqual(['/opt/cni/bin', '/srv/ipam']);
    expect(sharedPaths({}, null)).toEqual([]);
  });

  it('is the contract the C shim was compiled with', () => {
    const shim = readFileSync('cni/shim/shim.c', 'utf8');
    const define = (name: string): string => new RegExp(`^#define ${name} (.+?)(\\s*//.*)?$`, 'm').exec(shim)?.[1] ?? `${name} missing`;
    expect(define('CONNECT_MS')).toBe(String(RESIDENT_BOUNDS.connectMs));
    expect(define('SILENCE_MS')).toBe(String(RESIDENT_BOUNDS.silenceMs));
    expect(define('TOTAL_MS')).toBe(String(RESIDENT_BOUNDS.totalMs));
    expect(define('MAX_REQUEST_BYTES')).toBe(`(16 << 20)`);
    expect(16 << 20).toBe(MAX_REQUEST_BYTES);
    expect(define('DEFAULT_SOCKET')).toBe(JSON.stringify(DEFAULT_RESIDENT_SOCKET));
    expect(define('FALLBACK_ENV')).toBe(JSON.stringify(FALLBACK_ENV));
    expect(define('CLEAR_FIRST_ENV')).toBe(JSON.stringify(CLEAR_FIRST_ENV));
    expect(define('MAX_SOCKET_PATH')).toBe(String(MAX_SOCKET_PATH));
  });

  it('fences the server well before the executable gives up on it', () => {
    expect(RESIDENT_BOUNDS.fenceMs * 2).toBeLessThanOrEqual(RESIDENT_BOUNDS.silenceMs);
    expect(RESIDENT_BOUNDS.beatMs * 4).toBeLessThanOrEqual(RESIDENT_BOUNDS.fenceMs);
  });
});
