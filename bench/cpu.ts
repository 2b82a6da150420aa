// CPU time by program name (/proc/<pid>/stat's comm), for benches whose throughput is bound
// by CPU: it says where the cycles of a slower path went. Processes that start or end inside
// the measured span are counted only for the part each sample saw.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** Pure: comm and utime + stime (ticks) from one /proc/<pid>/stat line. */
export function parseStat(line: string): { comm: string; ticks: number } | undefined {
  // comm may hold spaces and parentheses: it ends at the last ')'.
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = line.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { comm: line.slice(open + 1, close), ticks: utime + stime };
}

function sample(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const s = parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (s) out.set(Number(entry), s);
    } catch {
      // exited between readdir and read
    }
  }
  return out;
}

/** CPU seconds each program name used while `fn` ran, with `fn`'s result. */
export async function cpuDuring<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: Map<string, number> }> {
  const before = sample();
  const result = await fn();
  const after = sample();
  const seconds = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const used = a.ticks - (b && b.comm === a.comm ? b.ticks : 0);
    seconds.set(a.comm, (seconds.get(a.comm) ?? 0) + used / TICKS_PER_SECOND);
  }
  return { result, seconds };
}
