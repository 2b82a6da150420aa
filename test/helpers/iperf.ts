// iperf3 as the tests, the benches and the demo run it. iperf3 -J reports its own
// failures inside the JSON and still exits 0 ("the server is busy running a test"),
// so a caller that only reads `end.sum_received` gets a TypeError instead of the cause.
import type { Runner } from '../../lib/runner.js';

export interface IperfResult {
  gbps: number;
  retransmits: number;
}

export class IperfError extends Error {
  constructor(readonly reason: string) {
    super(`iperf3: ${reason}`);
    this.name = 'IperfError';
  }
}

interface IperfJson {
  error?: string;
  end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
}

/** The figures of an `iperf3 -c ... -J` run, or IperfError with iperf3's own words. */
export function parseIperf(stdout: string, stderr = ''): IperfResult {
  let r: IperfJson;
  try {
    r = JSON.parse(stdout) as IperfJson;
  } catch {
    throw new IperfError(`output is not JSON: ${(stdout || stderr).slice(0, 200)}`);
  }
  if (r.error) throw new IperfError(r.error);
  const received = r.end?.sum_received?.bits_per_second;
  if (received === undefined) throw new IperfError('no end.sum_received in the report');
  return { gbps: received / 1e9, retransmits: r.end?.sum_sent?.retransmits ?? 0 };
}

const BUSY_RETRIES = 20;
const BUSY_PAUSE_MS = 250;

/**
 * One TCP stream to `target`:`port` for `seconds`, run through `runner` (which decides
 * the namespace). A server still finishing the previous client answers "busy": that is
 * waited out, any other error is thrown.
 */
export async function iperfClient(runner: Runner, target: string, options: { port?: number; seconds?: number; bind?: string } = {}): Promise<IperfResult> {
  const args = ['-c', target, '-p', String(options.port ?? 5201), '-t', String(options.seconds ?? 3), '-J', ...(options.bind ? ['-B', options.bind] : [])];
  for (let attempt = 0; ; attempt++) {
    const out = await runner('iperf3', args, { allowFailure: true });
    try {
      return parseIperf(out.stdout, out.stderr);
    } catch (err) {
      const busy = err instanceof IperfError && err.reason.includes('busy');
      if (!busy || attempt >= BUSY_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, BUSY_PAUSE_MS));
    }
  }
}
