// What a path is, as two processes in different mount namespaces can compare it: the
// device and inode of the path, or of its nearest existing parent (a directory a verb
// would create is then the same only when its parent is).
import { statSync } from 'node:fs';
import { dirname } from 'node:path';

export function pathIdentity(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      const st = statSync(p);
      return `${p === path ? '' : `${p} `}${st.dev}:${st.ino}`;
    } catch {
      if (p === dirname(p)) return '';
    }
  }
}

export function pathIdentities(paths: readonly string[]): Record<string, string> {
  return Object.fromEntries(paths.map((p) => [p, pathIdentity(p)]));
}
