import { describe, expect, it } from 'vitest';
import { encodeLine, LineDecoder, parseMessage, parseRequest, RESIDENT_BOUNDS, sharedPaths } from '../../../lib/cni-resident.js';

describe('the resident wire format', () => {
  it('carries a request whose stdin and environment hold newlines, split across chunks', () => {
    const req = { env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'a=b\nc' }, stdin: '{\n"cniVersion": "1.0.0"\n}', sentAt: 1, mntns: 'mnt:[1]', views: { '/run/netns/p': '4:4026532' } };
    const line = encodeLine(req);
    const d = new LineDecoder();
    expect(d.push(line.slice(0, 10))).toEqual([]);
    const [got] = d.push(line.slice(10));
    expect(parseRequest(got!)).toEqual(req);
  });

  it('rejects what is not a request or a message', () => {
    expect(parseRequest('{"env":{"A":1},"stdin":"","sentAt":1,"mntns":"","views":{}}')).toBeUndefined();
    expect(parseRequest('{"env":{},"stdin":"","sentAt":1,"mntns":""}')).toBeUndefined();
    expect(parseRequest('not json')).toBeUndefined();
    expect(parseMessage('{"t":"reply","exitCode":"0","stdout":""}')).toBeUndefined();
    expect(parseMessage('{"t":"refused","started":true,"reason":"x"}')).toEqual({ t: 'refused', started: true, reason: 'x' });
    expect(parseMessage('{"t":"beat"}')).toEqual({ t: 'beat' });
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

  it('fences the server well before the executable gives up on it', () => {
    expect(RESIDENT_BOUNDS.fenceMs * 2).toBeLessThanOrEqual(RESIDENT_BOUNDS.silenceMs);
    expect(RESIDENT_BOUNDS.beatMs * 4).toBeLessThanOrEqual(RESIDENT_BOUNDS.fenceMs);
  });
});
