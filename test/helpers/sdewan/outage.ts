// Reading a probe's record (echo-worker.ts startProbe): how long traffic stopped around an
// event. Pure, so the arithmetic is not the thing under test in the lab.

export type ProbeRecord = readonly (readonly [at: number, ok: boolean])[];

export interface Outage {
  /** Longest time between two answered probes with failed ones in between, from `since` on; 0 if none failed. */
  ms: number;
  /** Failed probes from `since` on. */
  failed: number;
  /** No answered probe after the last failure: the outage had not ended when the record stopped. */
  ongoing: boolean;
}

export function outage(record: ProbeRecord, since: number): Outage {
  let lastOk: number | undefined;
  let failedSinceOk = 0;
  let ms = 0;
  let failed = 0;
  for (const [at, ok] of record) {
    if (!ok) {
      if (at >= since) failed++;
      failedSinceOk++;
      continue;
    }
    // Failing from the first probe on: counted from that probe.
    if (failedSinceOk > 0 && at >= since) ms = Math.max(ms, at - (lastOk ?? record[0]![0]));
    lastOk = at;
    failedSinceOk = 0;
  }
  return { ms, failed, ongoing: failedSinceOk > 0 };
}

/** The record as runs of answers and failures, times from `since` (for a failed assertion's message). */
export function describeRecord(record: ProbeRecord, since: number): string {
  const runs: string[] = [];
  let i = 0;
  while (i < record.length) {
    const ok = record[i]![1];
    let j = i;
    while (j + 1 < record.length && record[j + 1]![1] === ok) j++;
    runs.push(`${ok ? 'ok' : 'FAIL'} x${j - i + 1} from ${record[i]![0] - since} ms`);
    i = j + 1;
  }
  return runs.join(', ');
}
