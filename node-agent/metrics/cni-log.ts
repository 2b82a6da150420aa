// The CNI plugin is a short-lived process per call; what it did reaches the agent through
// its log file (cni/log.ts: one JSON object a line, the verb in every line). Pure: bytes
// in, lines out (LineSplitter), a line in, the call it records out (parseCniLogLine).
//
// What the plugin writes at the end of every call (lib/cni-log.ts):
//   ok     {"msg":"added","verb":"ADD","ms":46,...}   (deleted, checked, collected, ready)
//   error  {"level":"error","verb":...,"code":7,"ms":3,...}   (the CNI error code)
// Other lines (every command it ran, warnings, a rollback step that failed) are not calls.
// A call that fails before its config is read has no log file to write to.

import { CALL_DONE } from '../../lib/cni-log.js';

export interface CniCall {
  verb: string;
  result: 'ok' | 'error';
  /** Undefined where the line carries no duration. */
  seconds?: number;
}

/** The message that ends a successful call -> its verb. */
const DONE: Record<string, string> = Object.fromEntries(Object.entries(CALL_DONE).map(([verb, msg]) => [msg, verb]));

export function parseCniLogLine(line: string): CniCall | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined; // a line cut by a crash, or not the plugin's
  }
  if (!doc || typeof doc !== 'object') return undefined;
  const r = doc as { verb?: unknown; msg?: unknown; level?: unknown; code?: unknown; ms?: unknown };
  if (typeof r.verb !== 'string' || !Object.hasOwn(CALL_DONE, r.verb)) return undefined;
  const seconds = typeof r.ms === 'number' && Number.isFinite(r.ms) && r.ms >= 0 ? r.ms / 1000 : undefined;
  if (r.level === 'error' && typeof r.code === 'number') return { verb: r.verb, result: 'error', seconds };
  if (typeof r.msg === 'string' && DONE[r.msg] === r.verb) return { verb: r.verb, result: 'ok', seconds };
  return undefined;
}

/** A line longer than this is not the plugin's: dropped rather than buffered without end. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Whole lines out of chunks read as they come; a line still being written waits for its end. */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      if (nl > start) lines.push(data.subarray(start, nl).toString('utf8'));
      start = nl + 1;
    }
    this.rest = data.length - start > MAX_LINE_BYTES ? Buffer.alloc(0) : Buffer.from(data.subarray(start));
    return lines;
  }

  /** A new file (rotated, truncated): a partial line of the old one ends with it. */
  reset(): void {
    this.rest = Buffer.alloc(0);
  }
}
