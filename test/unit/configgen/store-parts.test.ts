import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gaps, homeIndex } from '../../../configgen/allocate.js';
import { indexWidth, keyLayout, prefixEnd } from '../../../lib/etcd/keys.js';
import { nodeNameProblem } from '../../../lib/names.js';
import { writeFileAtomic } from '../../../lib/write-file.js';
import { WriteError } from '../../../configgen/errors.js';
import { parseEndpoints } from '../../../lib/etcd/endpoints.js';

describe('key layout', () => {
  it('pads subnet indexes to the pool\'s width so that key order is index order', () => {
    const keys = keyLayout('/warren/');
    expect(indexWidth(256)).toBe(3);
    expect(indexWidth(4096)).toBe(4);
    expect(keys.subnet(7, 3)).toBe('/warren/subnets/007');
    expect(keys.node('a')).toBe('/warren/nodes/a');
    expect(prefixEnd('/warren/subnets/')).toBe('/warren/subnets0');
  });
  it('refuses prefixes that are not absolute keys', () => {
    expect(() => keyLayout('warren')).toThrow(/must start with "\/"/);
  });
  it('accepts Kubernetes node names only', () => {
    expect(nodeNameProblem('ip-10-0-0-1.ec2.internal')).toBeUndefined();
    expect(nodeNameProblem('Node')).toMatch(/not a Kubernetes node name/);
    expect(nodeNameProblem('')).toBe('is empty');
  });
});

describe('candidate choice', () => {
  it('starts each node at a fixed index spread over the pool', () => {
    expect(homeIndex('node-a', 256)).toBe(homeIndex('node-a', 256));
    const homes = new Set(Array.from({ length: 1000 }, (_, i) => homeIndex(`node-${i}`, 4096)));
    expect(homes.size).toBeGreaterThan(850); // about 1000 * (1 - e^-0.244) for a uniform hash
  });
  it('finds the gaps of a window', () => {
    expect(gaps(10, 16, new Set([10, 12, 13]))).toEqual([11, 14, 15]);
    expect(gaps(0, 3, new Set([0, 1, 2]))).toEqual([]);
  });
});

describe('parseEndpoints', () => {
  it('adds the scheme TLS implies', () => {
    expect(parseEndpoints('10.0.0.1:2379, https://etcd:2379', true)).toEqual(['https://10.0.0.1:2379', 'https://etcd:2379']);
    expect(parseEndpoints(['0.0.0.0:42000'], false)).toEqual(['http://0.0.0.0:42000']);
  });
  it.each([
    ['', false, /none given/],
    ['etcd', false, /must be host:port/],
    ['ftp://etcd:21', false, /must use http or https/],
    ['http://etcd:2379', true, /plain http but TLS certificates were given/],
  ])('refuses %j', (text, tls, message) => {
    expect(() => parseEndpoints(text, tls)).toThrow(message);
  });
});

describe('writeFileAtomic', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes, then leaves identical content untouched', () => {
    dir = mkdtempSync(join(tmpdir(), 'warren-write-'));
    const path = join(dir, 'sub', '10-warren.conflist');
    expect(writeFileAtomic(path, 'one\n')).toBe('written');
    const before = statSync(path, { bigint: true });
    expect(writeFileAtomic(path, 'one\n')).toBe('unchanged');
    const after = statSync(path, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([before.ino, before.mtimeNs]);
    expect(writeFileAtomic(path, 'two\n')).toBe('written');
    expect(readFileSync(path, 'utf8')).toBe('two\n');
    expect((statSync(path).mode & 0o777).toString(8)).toBe('644');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['10-warren.conflist']);
  });

  it('reports a directory it cannot write to and leaves no temporary file', () => {
    dir = mkdtempSync(join(tmpdir(), 'warren-write-'));
    writeFileSync(join(dir, 'file'), '');
    const err = (() => {
      try {
        writeFileAtomic(join(dir, 'file', 'x.conflist'), 'x');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toMatch(/cannot write .*x.conflist/);
    expect(readdirSync(dir)).toEqual(['file']);
  });
});
