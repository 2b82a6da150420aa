// iperf3 3.12 -J exits 0 on its own failures; the fixtures are its real output.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IperfError, iperfClient, parseIperf } from '../../helpers/iperf.js';
import type { Runner } from '../../../lib/runner.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/iperf/${name}.json`, import.meta.url), 'utf8');

describe('iperf3 reports', () => {
  it('reads the received rate of a finished run', () => {
    const r = parseIperf(fixture('ok'));
    expect(r.gbps).toBeGreaterThan(0);
    expect(r.retransmits).toBeGreaterThanOrEqual(0);
  });

  it('names the cause iperf3 put in the JSON instead of failing on a missing field', () => {
    expect(() => parseIperf(fixture('refused'))).toThrow('iperf3: unable to connect to server: Connection refused');
    expect(() => parseIperf('iperf3: error - some text')).toThrow(/output is not JSON: iperf3: error/);
  });

  it('waits out a server still busy with the previous client, and gives up on anything else', async () => {
    const answers = [fixture('busy'), fixture('busy'), fixture('ok')];
    const calls: string[][] = [];
    const runner: Runner = async (_file, args) => {
      calls.push([...args]);
      return { stdout: answers.shift()!, stderr: '', exitCode: 0 };
    };
    expect((await iperfClient(runner, '10.0.0.2', { port: 5301, seconds: 2 })).gbps).toBeGreaterThan(0);
    expect(calls).toHaveLength(3);
    expect(calls[0]).toEqual(['-c', '10.0.0.2', '-p', '5301', '-t', '2', '-J']);

    const refused: Runner = async () => ({ stdout: fixture('refused'), stderr: '', exitCode: 0 });
    await expect(iperfClient(refused, '10.0.0.2')).rejects.toBeInstanceOf(IperfError);
  });
});
