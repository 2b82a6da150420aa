// Writes a file so that readers see the old content or the new, never a part: a
// temporary file in the same directory, flushed, then renamed over the target. The
// temporary name ends in .tmp because libcni loads every *.conf, *.conflist and *.json
// in the conf dir. Identical content is left alone (no rename, no new mtime), so that
// runtimes watching the directory see no change on a rerun.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errorMessage, WarrenError } from './errors.js';

export type WriteOutcome = 'written' | 'unchanged';

/** The file could not be written (warren-configgen exits 6 on it). */
export class WriteError extends WarrenError {
  readonly exitStatus = 6;
  constructor(message: string, options?: { cause?: unknown }) {
    super('WRITE_FAILED', message, options);
  }
}

function currentContent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function writeFileAtomic(path: string, content: string, mode = 0o644): WriteOutcome {
  if (currentContent(path) === content) return 'unchanged';
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    // The rename itself must reach the disk before we report success.
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return 'written';
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the directory itself is unusable: there is no temporary file to remove
    }
    throw new WriteError(`cannot write ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
