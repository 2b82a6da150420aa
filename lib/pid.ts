// Whether a process still runs, for waiting on daemons that are not our children.
import { readFileSync } from 'node:fs';

/** Alive and not a zombie: a daemon whose parent died is reaped by pid 1, sometimes only every few seconds. */
export function isRunning(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
