import { describe, expect, it } from 'vitest';
import { Fence, FencedError, fencedRunner, fenceReason } from '../../../../cni/resident/fence.js';
import type { Runner } from '../../../../lib/runner.js';

describe('fenceReason', () => {
  it('stops a request whose last beat is older than the bound, or whose executable hung up', () => {
    expect(fenceReason(1_500, 1_000, 500, false)).toBeUndefined();
    expect(fenceReason(1_501, 1_000, 500, false)).toMatch(/no beat for 501 ms/);
    expect(fenceReason(1_000, 1_000, 500, true)).toMatch(/closed the connection/);
  });
});

describe('Fence', () => {
  it('beats while on time, and once tripped stays shut whatever beats follow', () => {
    let now = 10_000;
    const f = new Fence(() => now, 500, 9_900);
    expect(f.beat()).toBe(true);
    now += 400;
    expect(f.beat()).toBe(true);
    now += 800; // stopped (SIGSTOP) for 800 ms: the executable may be working standalone
    expect(f.beat()).toBe(false);
    now += 10;
    expect(f.beat()).toBe(false);
    expect(f.tripped).toMatch(/no beat for 800 ms/);
    expect(f.blocked).toBe(false);
  });

  it('refuses a request that waited in the backlog past the bound before the server read it', () => {
    const f = new Fence(() => 20_000, 500, 19_000);
    expect(f.beat()).toBe(false);
  });

  it('stops every command once tripped and says the work is incomplete', async () => {
    let now = 0;
    const calls: string[] = [];
    const runner: Runner = async (file) => {
      calls.push(file);
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const f = new Fence(() => now, 500, 0);
    const fenced = fencedRunner(runner, f);
    await fenced('ip', []);
    now = 501;
    await expect(fenced('nft', [])).rejects.toBeInstanceOf(FencedError);
    f.close();
    expect(calls).toEqual(['ip']);
    expect(f.blocked).toBe(true);
  });
});
