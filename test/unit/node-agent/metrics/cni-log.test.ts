import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatch } from '../../../../cni/dispatch.js';
import { LineSplitter, MAX_LINE_BYTES, parseCniLogLine } from '../../../../node-agent/metrics/cni-log.js';

// Lines as cni/dispatch.ts writes them (fileLogger: time, level, msg, then verb, containerId, ifname, then the fields).
const added = '{"time":"2026-11-23T12:00:00.000Z","level":"info","msg":"added","verb":"ADD","containerId":"c1","ifname":"eth0","ms":46,"ips":["10.244.7.5/24"]}';
const deleted = '{"time":"2026-11-23T12:00:01.000Z","level":"info","msg":"deleted","verb":"DEL","containerId":"c1","ifname":"eth0","ms":50}';
const gc = '{"time":"2026-11-23T12:00:02.000Z","level":"info","msg":"collected","verb":"GC","ms":12}';
const checked = '{"time":"2026-11-23T12:00:03.000Z","level":"info","msg":"checked","verb":"CHECK","ms":20}';
const ready = '{"time":"2026-11-23T12:00:04.000Z","level":"info","msg":"ready","verb":"STATUS","ms":7}';

describe('parseCniLogLine', () => {
  it('reads the end of each successful call, every verb with its duration', () => {
    expect(parseCniLogLine(added)).toEqual({ verb: 'ADD', result: 'ok', seconds: 0.046 });
    expect(parseCniLogLine(deleted)).toEqual({ verb: 'DEL', result: 'ok', seconds: 0.05 });
    expect(parseCniLogLine(gc)).toEqual({ verb: 'GC', result: 'ok', seconds: 0.012 });
    expect(parseCniLogLine(checked)).toEqual({ verb: 'CHECK', result: 'ok', seconds: 0.02 });
    expect(parseCniLogLine(ready)).toEqual({ verb: 'STATUS', result: 'ok', seconds: 0.007 });
  });

  it('reads the plugin\'s own error lines, as the real plugin writes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-cni-log-'));
    try {
      const logFile = join(dir, 'cni.log');
      const conf = (v: string) => JSON.stringify({ cniVersion: v, name: 'warren', type: 'warren', ipam: { type: 'host-local' }, logFile });
      const io = { stdout: () => {}, runner: async () => ({ stdout: '', stderr: '', exitCode: 0 }), cacheDir: '/nonexistent' };
      await dispatch({ ...io, env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/nope', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' }, stdin: conf('1.0.0') });
      await dispatch({ ...io, env: { CNI_COMMAND: 'STATUS', CNI_PATH: '/nonexistent' }, stdin: conf('1.1.0') });
      const lines = readFileSync(logFile, 'utf8').trim().split('\n');
      expect(lines.map(parseCniLogLine).filter(Boolean)).toEqual([
        { verb: 'ADD', result: 'error', seconds: expect.any(Number) },
        { verb: 'STATUS', result: 'error', seconds: expect.any(Number) },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['a command the plugin ran', '{"level":"info","msg":"command","verb":"ADD","cmd":"ip link add","ms":3,"exitCode":0}'],
    ['a rollback step that failed (the call\'s own error line counts it)', '{"level":"error","msg":"rollback of veth failed","verb":"ADD","error":"x"}'],
    ['a warning', '{"level":"warn","msg":"removing stale host veth","verb":"ADD"}'],
    ['GC\'s own report (its call ends with "collected")', '{"level":"info","msg":"gc","verb":"GC","removedPorts":[],"releasedAddresses":[]}'],
    ['"added" under another verb', '{"level":"info","msg":"added","verb":"DEL","ms":1}'],
    ['an unknown verb', '{"level":"error","msg":"x","verb":"UPDATE","code":4}'],
    ['a line cut short', added.slice(0, 40)],
    ['not an object', '42'],
    ['an empty line', ''],
  ])('ignores %s', (_, line) => {
    expect(parseCniLogLine(line)).toBeUndefined();
  });

  it('keeps no duration that is not one', () => {
    expect(parseCniLogLine('{"msg":"added","verb":"ADD","ms":-1}')).toEqual({ verb: 'ADD', result: 'ok', seconds: undefined });
    expect(parseCniLogLine('{"msg":"added","verb":"ADD","ms":"46"}')).toEqual({ verb: 'ADD', result: 'ok', seconds: undefined });
  });
});

describe('LineSplitter', () => {
  it('returns whole lines only, holding a line until its end arrives, across UTF-8 sequences cut in two', () => {
    const s = new LineSplitter();
    const text = Buffer.from('{"msg":"é"}\n{"msg":"second"}\n{"msg":"thi');
    const cut = text.indexOf(0xa9); // inside é
    expect(s.push(text.subarray(0, cut))).toEqual([]);
    expect(s.push(text.subarray(cut))).toEqual(['{"msg":"é"}', '{"msg":"second"}']);
    expect(s.push(Buffer.from('rd"}\n\n'))).toEqual(['{"msg":"third"}']);
  });

  it('drops a line that never ends rather than holding it without limit, and forgets a partial line on reset', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61))).toEqual([]);
    expect(s.push(Buffer.from('tail\n'))).toEqual(['tail']);
    s.push(Buffer.from('{"half'));
    s.reset();
    expect(s.push(Buffer.from('{"whole":1}\n'))).toEqual(['{"whole":1}']);
  });
});
