import { describe, expect, it } from 'vitest';
import { describeRecord, outage } from '../../helpers/sdewan/outage.js';

describe('outage of a probe record', () => {
  it('is the longest gap between answers that has failures in it, from the event on', () => {
    const r = [[0, true], [100, true], [200, false], [700, false], [1200, true], [1300, true], [1400, false], [1900, true]] as const;
    expect(outage(r, 150)).toEqual({ ms: 1100, failed: 3, ongoing: false });
    expect(outage(r, 1250)).toEqual({ ms: 600, failed: 1, ongoing: false });
  });

  it('is zero when nothing failed, and says when the last failure never ended', () => {
    expect(outage([[0, true], [100, true]], 0)).toEqual({ ms: 0, failed: 0, ongoing: false });
    expect(outage([[0, true], [100, false]], 0)).toEqual({ ms: 0, failed: 1, ongoing: true });
    // Not answering from the start: counted from the first probe.
    expect(outage([[0, false], [100, false], [200, true]], 50)).toEqual({ ms: 200, failed: 1, ongoing: false });
  });

  it('describes a record as runs of answers and failures from the event on', () => {
    const r = [[0, true], [100, true], [200, false], [700, false], [1200, true]] as const;
    expect(describeRecord(r, 150)).toBe('ok x2 from -150 ms, FAIL x2 from 50 ms, ok x1 from 1050 ms');
    expect(describeRecord([], 0)).toBe('');
  });
});
