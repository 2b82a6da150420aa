// Kernel parameters of the calling process's network namespace, written only when
// they differ (a write to /proc/sys is not free under 50 concurrent ADDs).
import { readFileSync, writeFileSync } from 'node:fs';

export function ensureSysctl(key: string, value: string): void {
  ensureProcSys(`/proc/sys/${key.replaceAll('.', '/')}`, value);
}

/** The same by path: interface names may hold dots, which sysctl keys cannot. */
export function ensureProcSys(path: string, value: string): void {
  if (readFileSync(path, 'utf8').trim() === value) return;
  writeFileSync(path, value);
}
