// The follower on real files in a temporary directory: each test moves the file the way
// the plugin or a log rotator would, then polls once.
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CniCall } from '../../../../node-agent/metrics/cni-log.js';
import { CniLogFollower } from '../../../../node-agent/metrics/cni-log-follower.js';

const line = (verb: 'ADD' | 'DEL', ms: number) => JSON.stringify({ time: '2026-11-23T12:00:00.000Z', level: 'info', msg: verb === 'ADD' ? 'added' : 'deleted', verb, ms }) + '\n';

let dir: string;
let path: string;
let calls: CniCall[];
let errors: unknown[];
let follower: CniLogFollower;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warren-follow-'));
  path = join(dir, 'cni.log');
  calls = [];
  errors = [];
  follower = new CniLogFollower({ path, onCall: (c) => calls.push(c), onError: (e) => errors.push(e) });
});

afterEach(async () => {
  await follower.stop();
  rmSync(dir, { recursive: true, force: true });
});

const ms = () => calls.map((c) => c.seconds! * 1000);

describe('CniLogFollower', () => {
  it('does not count again what the file held when the agent started, only what comes after', async () => {
    writeFileSync(path, line('ADD', 1) + line('DEL', 2));
    await follower.poll();
    appendFileSync(path, line('ADD', 3));
    await follower.poll();
    expect(calls).toEqual([{ verb: 'ADD', result: 'ok', seconds: 0.003 }]);
  });

  it('waits for a file that does not exist yet, then reads it from its start', async () => {
    await follower.poll();
    writeFileSync(path, line('ADD', 1) + line('ADD', 2));
    await follower.poll();
    expect(ms()).toEqual([1, 2]);
    expect(errors).toEqual([]);
  });

  it('counts a line being written only once it ends', async () => {
    await follower.poll();
    const l = line('ADD', 7);
    writeFileSync(path, l.slice(0, 20));
    await follower.poll();
    expect(calls).toEqual([]);
    appendFileSync(path, l.slice(20));
    await follower.poll();
    expect(ms()).toEqual([7]);
  });

  it('starts over after the file was truncated in place (copytruncate)', async () => {
    writeFileSync(path, line('ADD', 1).repeat(5));
    await follower.poll();
    truncateSync(path, 0);
    appendFileSync(path, line('DEL', 9));
    await follower.poll();
    expect(ms()).toEqual([9]);
  });

  it('reads a rotated file to its end, then the new one from its start', async () => {
    await follower.poll();
    writeFileSync(path, line('ADD', 1));
    await follower.poll();
    appendFileSync(path, line('ADD', 2)); // written after the last poll, before the rotation
    renameSync(path, `${path}.1`);
    writeFileSync(path, line('DEL', 3));
    await follower.poll();
    expect(ms()).toEqual([1, 2, 3]);
  });

  it('carries on when the file is removed and made again', async () => {
    await follower.poll();
    writeFileSync(path, line('ADD', 1));
    await follower.poll();
    rmSync(path);
    await follower.poll();
    writeFileSync(path, line('ADD', 2));
    await follower.poll();
    expect(ms()).toEqual([1, 2]);
    expect(errors).toEqual([]);
  });

  it('reports a file it cannot read, once', async () => {
    follower = new CniLogFollower({ path: join(path, 'under-a-file'), onCall: () => {}, onError: (e) => errors.push(e) });
    writeFileSync(path, '');
    await follower.poll();
    await follower.poll();
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/ENOTDIR/);
  });
});
