// JSON lines to the configured log file. Never stdout (that belongs to the runtime),
// and a log that cannot be written never fails the verb.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Logger {
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { log() {} };

export function fileLogger(path: string, base: Record<string, unknown>): Logger {
  let dirMade = false;
  return {
    log(level, msg, fields = {}) {
      try {
        if (!dirMade) {
          mkdirSync(dirname(path), { recursive: true });
          dirMade = true;
        }
        appendFileSync(path, JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }) + '\n');
      } catch {
        // logging is best effort
      }
    },
  };
}
