// The soak's verdicts (bench/soak.ts): residue against a snapshot, RSS flatness, failures.
import { describe, expect, it } from 'vitest';
import {
  describeRule, environHas, environHasPrefix, FailureLog, formatResidue, formatRss, formatTally, intKnob, isFailure,
  piecesKey, residue, residueCount, rssVerdict, seededRandom, startMiddleEnd, vmRssKiB,
} from '../../../bench/soak-figures.js';

const snapshot = { links: ['lo', 'ovs-netdev', 'warren0'], ovsInterfaces: ['warren0'], allocations: [], nftRules: 1 };

describe('residue', () => {
  it('is empty when the node equals its snapshot', () => {
    const r = residue(snapshot, { ...snapshot, links: [...snapshot.links] });
    expect(r).toEqual({ veths: [], ports: [], allocations: [], nftRules: 0, missing: [] });
    expect(residueCount(r)).toBe(0);
    expect(formatResidue(r)).toBe('veths 0, OVS ports 0, addresses 0, nft rules +0');
  });

  it('names what is new, per kind, and what went missing', () => {
    const now = {
      links: ['lo', 'ovs-netdev', 'wrn0123456789ab'],
      ovsInterfaces: ['warren0', 'wrn0123456789ab'],
      allocations: ['10.244.3.7'],
      nftRules: 3,
    };
    const r = residue(snapshot, now);
    expect(r).toEqual({
      veths: ['wrn0123456789ab'], ports: ['wrn0123456789ab'], allocations: ['10.244.3.7'], nftRules: 2, missing: ['link warren0'],
    });
    expect(residueCount(r)).toBe(6);
    expect(formatResidue(r)).toBe(
      'veths 1 (wrn0123456789ab), OVS ports 1 (wrn0123456789ab), addresses 1 (10.244.3.7), nft rules +2, missing 1 (link warren0)');
  });

  it('counts a lost nft rule as residue too, and shortens long lists', () => {
    const r = residue(snapshot, { ...snapshot, links: [...snapshot.links, 'a', 'b', 'c', 'd', 'e', 'f'], nftRules: 0 });
    expect(residueCount(r)).toBe(7);
    expect(formatResidue(r)).toBe('veths 6 (a, b, c, d, +2 more), OVS ports 0, addresses 0, nft rules -1');
  });
});

describe('RSS', () => {
  it('reads VmRSS from a status file', () => {
    expect(vmRssKiB('Name:\tovs-vswitchd\nVmHWM:\t   20000 kB\nVmRSS:\t   18124 kB\nRssAnon:\t 9000 kB\n')).toBe(18124);
    expect(vmRssKiB('Name:\tkthreadd\nState:\tS (sleeping)\n')).toBeUndefined();
  });

  it('is flat up to start x 1.2 + 8 MiB and grew beyond', () => {
    const start = 100 * 1024;
    const limit = 128 * 1024; // 120 MiB + 8 MiB
    expect(rssVerdict(start, limit)).toMatchObject({ ok: true, limitKiB: limit, growthKiB: 28 * 1024 });
    expect(rssVerdict(start, limit + 1).ok).toBe(false);
    expect(rssVerdict(start, 90 * 1024)).toMatchObject({ ok: true, growthKiB: -10 * 1024, growthPct: -10 });
    // a small process may grow by the slack alone
    expect(rssVerdict(1024, 9 * 1024 + 200).ok).toBe(true);
    expect(describeRule()).toBe('RSS at the end <= RSS at the start x 1.20 + 8 MiB');
  });

  it('prints start, middle, end, growth and the verdict', () => {
    expect(formatRss('ovsdb-server', 7 * 1024, 7.5 * 1024, 8 * 1024))
      .toBe('ovsdb-server   start 7.0 MiB, middle 7.5 MiB, end 8.0 MiB: +1.0 MiB (+14.3%), limit 16.4 MiB: flat');
    expect(formatRss('ovs-vswitchd', 20 * 1024, 30 * 1024, 40 * 1024)).toMatch(/end 40\.0 MiB: \+20\.0 MiB \(\+100\.0%\), limit 32\.0 MiB: GREW$/);
  });

  it('takes the first, middle and last sample', () => {
    expect(startMiddleEnd([1, 2, 3, 4, 5])).toEqual([1, 3, 5]);
    expect(startMiddleEnd([1, 2])).toEqual([1, 1, 2]);
    expect(startMiddleEnd([7])).toEqual([7, 7, 7]);
    expect(() => startMiddleEnd([])).toThrow();
  });
});

describe('failures', () => {
  it('are a non-zero exit or the error JSON', () => {
    expect(isFailure({ exitCode: 0, json: { cniVersion: '1.0.0', ips: [] } })).toBe(false);
    expect(isFailure({ exitCode: 0, json: undefined })).toBe(false);
    expect(isFailure({ exitCode: 1, json: undefined })).toBe(true);
    expect(isFailure({ exitCode: 0, json: { code: 11, msg: 'try again' } })).toBe(true);
  });

  it('are counted, the first few kept', () => {
    const log = new FailureLog(2);
    for (const m of ['a', 'b', 'c']) log.add(m);
    log.add('x'.repeat(500));
    expect(log.count).toBe(4);
    expect(log.first).toEqual(['a', 'b']);
    const long = new FailureLog();
    long.add('y'.repeat(500));
    expect(long.first[0]).toHaveLength(403);
  });
});

describe('a killed plugin\'s children', () => {
  const environ = 'PATH=/usr/bin\0CNI_COMMAND=ADD\0CNI_CONTAINERID=soakx-kill-1\0CNI_IFNAME=eth0\0';
  it('are found by their exact CNI_CONTAINERID', () => {
    expect(environHas(environ, 'CNI_CONTAINERID', 'soakx-kill-1')).toBe(true);
    expect(environHas(environ, 'CNI_CONTAINERID', 'soakx-kill-10')).toBe(false);
    expect(environHas(environ, 'CNI_CONTAINERID', 'soakx-kill-')).toBe(false);
    expect(environHas('CNI_CONTAINERID=soakx-kill-1', 'CNI_CONTAINERID', 'soakx-kill-1')).toBe(true);
    expect(environHas('X_CNI_CONTAINERID=soakx-kill-1\0', 'CNI_CONTAINERID', 'soakx-kill-1')).toBe(false);
  });

  it('or all of a run by its prefix', () => {
    expect(environHasPrefix(environ, 'CNI_CONTAINERID', 'soakx-kill-')).toBe(true);
    expect(environHasPrefix(environ, 'CNI_CONTAINERID', 'soaky-kill-')).toBe(false);
  });
});

describe('kills', () => {
  it('have replayable moments, uniform in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(seededRandom(43)()).not.toBe(seededRandom(42)());
  });

  it('are tallied by what they left', () => {
    expect(piecesKey({ veth: false, port: false, address: false })).toBe('nothing');
    expect(piecesKey({ veth: true, port: false, address: true })).toBe('veth+address');
    expect(formatTally(['nothing', 'veth+port+address', 'nothing', 'address'])).toBe('nothing 2, address 1, veth+port+address 1');
    expect(formatTally([])).toBe('none');
  });
});

describe('knobs', () => {
  it('take an integer from the environment or the default', () => {
    expect(intKnob({}, 'SOAK_CYCLES', 10_000)).toBe(10_000);
    expect(intKnob({ SOAK_CYCLES: '' }, 'SOAK_CYCLES', 10_000)).toBe(10_000);
    expect(intKnob({ SOAK_CYCLES: '400' }, 'SOAK_CYCLES', 10_000)).toBe(400);
    expect(() => intKnob({ SOAK_CYCLES: 'many' }, 'SOAK_CYCLES', 1)).toThrow(/SOAK_CYCLES=many/);
    expect(() => intKnob({ SOAK_CYCLES: '-3' }, 'SOAK_CYCLES', 1)).toThrow();
  });
});
