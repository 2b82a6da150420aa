// The bench's CPU accounting reads /proc/<pid>/stat: the program name and utime + stime.
import { describe, expect, it } from 'vitest';
import { cpuDuring, parseStat } from '../../../bench/cpu.js';

describe('parseStat', () => {
  it('reads the name and utime + stime of a stat line', () => {
    const line = '4323 (wireguard-go) S 4276 4323 4323 0 -1 4194560 1052 0 0 0 71 36 0 0 20 0 9 0 5120 1674020864 2745 18446744073709551615';
    expect(parseStat(line)).toEqual({ comm: 'wireguard-go', ticks: 107 });
  });

  it('keeps a name with spaces and parentheses whole', () => {
    const line = '77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 0 0 0';
    expect(parseStat(line)).toEqual({ comm: 'a (b) c', ticks: 11 });
  });

  it('refuses a line that is not a stat line', () => {
    expect(parseStat('no parentheses here')).toBeUndefined();
    expect(parseStat('1 (x) S 1 2')).toBeUndefined();
  });
});

describe('cpuDuring', () => {
  it('charges this process for a busy loop it ran', async () => {
    const { result, seconds } = await cpuDuring(async () => {
      // Busy until this process has used 300 ms of CPU, however loaded the machine is.
      const start = process.cpuUsage();
      let n = 0;
      for (;;) {
        const used = process.cpuUsage(start);
        if (used.user + used.system >= 300_000) return n;
        n++;
      }
    });
    expect(result).toBeGreaterThan(0);
    const mine = (await import('node:fs')).readFileSync('/proc/self/stat', 'utf8');
    const comm = parseStat(mine)!.comm;
    expect(seconds.get(comm)).toBeGreaterThanOrEqual(0.25);
  });
});
