// The port share's decisions: the script, the in-sync test against what a real nft 1.0.6
// printed (fixtures/nft-list-warren-probe.json, captured from the script below), and the
// executor's reconcile steps on a fake runner. Real packets: test/integration/node-agent/traversal.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CommandError } from '../../../../lib/errors.js';
import type { Runner, RunOptions } from '../../../../lib/runner.js';
import { PortShareConfigError } from '../../../../node-agent/traversal/errors.js';
import {
  disablePortShare, enablePortShare, portShareCounters, portShareInSync, portShareRemovalScript, portShareScript,
} from '../../../../node-agent/traversal/port-share.js';

const share = { wgPort: 51820, probePort: 51821 };
const fixture = (): { nftables: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(new URL('./fixtures/nft-list-warren-probe.json', import.meta.url), 'utf8')) as { nftables: Record<string, unknown>[] };

type Rule = { chain: string; comment: string; expr: Record<string, unknown>[] };
const rules = (listed: { nftables: Record<string, unknown>[] }): Rule[] => listed.nftables.filter((o) => 'rule' in o).map((o) => o.rule as Rule);

describe('portShareScript', () => {
  it('replaces the whole table in one transaction: rewrite out at raw priority, STUN back in', () => {
    const script = portShareScript(share);
    expect(script.split('\n').slice(0, 3)).toEqual(['add table inet warren_probe', 'delete table inet warren_probe', 'table inet warren_probe {']);
    expect(script).toContain('type filter hook output priority raw; policy accept;');
    expect(script).toContain('udp sport 51821 notrack udp sport set 51820 counter comment "warren-probe v1: from 51821 leaves as 51820"');
    expect(script).toContain('type filter hook prerouting priority raw; policy accept;');
    expect(script).toContain('udp dport 51820 @th,96,32 0x2112a442 @th,64,8 & 0xc0 == 0x0 @th,72,24 != 0x0 fib daddr type local notrack udp dport set 51821 counter');
    expect(portShareScript({ ...share, table: 'other_t' })).toContain('table inet other_t {');
  });

  it('rejects ports and names it cannot build a safe rewrite from', () => {
    for (const bad of [
      { wgPort: 51820, probePort: 51820 },
      { wgPort: 0, probePort: 51821 },
      { wgPort: 51820, probePort: 65536 },
      { wgPort: 51820.5, probePort: 51821 },
      { ...share, table: 'x; flush ruleset' },
      { ...share, table: '' },
    ]) {
      expect(() => portShareScript(bad), JSON.stringify(bad)).toThrow(PortShareConfigError);
    }
    expect(() => portShareScript({ wgPort: 1, probePort: 1 })).toThrow(expect.objectContaining({ code: 'PORT_SHARE_INVALID' }));
  });

  it('removes with the same add-then-delete pair, so an absent table is not an error', () => {
    expect(portShareRemovalScript()).toBe('add table inet warren_probe\ndelete table inet warren_probe\n');
    expect(() => portShareRemovalScript('bad name')).toThrow(PortShareConfigError);
  });
});

describe('portShareInSync (nft -j list table inet warren_probe)', () => {
  it('accepts what nft printed for the script, whatever the counters say', () => {
    const listed = fixture();
    expect(portShareInSync(share, listed)).toBe(true);
    for (const r of rules(listed)) for (const e of r.expr) if ('counter' in e) e.counter = { packets: 12345, bytes: 999999 };
    expect(portShareInSync(share, listed)).toBe(true);
  });

  it('sees an absent table, other ports, an older version and any edited rule or chain', () => {
    expect(portShareInSync(share, undefined)).toBe(false);
    expect(portShareInSync({ ...share, probePort: 51822 }, fixture())).toBe(false);
    expect(portShareInSync({ wgPort: 51830, probePort: 51821 }, fixture())).toBe(false);

    const edits: [string, (l: { nftables: Record<string, unknown>[] }) => void][] = [
      ['older comment', (l) => (rules(l)[0]!.comment = rules(l)[0]!.comment.replace('v1', 'v0'))],
      ['notrack removed', (l) => (rules(l)[1]!.expr = rules(l)[1]!.expr.filter((e) => !('notrack' in e)))],
      ['a match removed', (l) => rules(l)[1]!.expr.splice(3, 1)],
      ['extra rule', (l) => l.nftables.push({ rule: { ...rules(l)[1]!, handle: 9 } })],
      ['chain missing', (l) => (l.nftables = l.nftables.filter((o) => !('chain' in o && (o.chain as { name: string }).name === 'output')))],
      ['other priority', (l) => ((l.nftables.find((o) => 'chain' in o)!.chain as { prio: number }).prio = 0)],
      ['drop policy', (l) => ((l.nftables.find((o) => 'chain' in o)!.chain as { policy: string }).policy = 'drop')],
    ];
    for (const [what, edit] of edits) {
      const listed = fixture();
      edit(listed);
      expect(portShareInSync(share, listed), what).toBe(false);
    }
  });
});

it('portShareCounters reads both rules\' packet counters', () => {
  const listed = fixture();
  const [out, pre] = rules(listed);
  out!.expr.find((e) => 'counter' in e)!.counter = { packets: 7, bytes: 700 };
  pre!.expr.find((e) => 'counter' in e)!.counter = { packets: 5, bytes: 500 };
  expect(portShareCounters(listed)).toEqual({ sent: 7, diverted: 5 });
  expect(portShareCounters({ nftables: [] })).toEqual({ sent: 0, diverted: 0 });
});

/** A runner that answers `nft -j list` with `table` (undefined: absent) and records every call. */
function fakeNft(table: unknown): { runner: Runner; calls: { args: readonly string[]; input?: string }[] } {
  const calls: { args: readonly string[]; input?: string }[] = [];
  const runner: Runner = async (file, args, options: RunOptions = {}) => {
    expect(file).toBe('nft');
    calls.push({ args, ...(options.input !== undefined ? { input: options.input } : {}) });
    if (args[0] === '-j') {
      if (table === undefined) return { stdout: '', stderr: 'Error: No such file or directory; did you mean table ‘x’ in family inet?', exitCode: 1 };
      return { stdout: JSON.stringify(table), stderr: '', exitCode: 0 };
    }
    return { stdout: '', stderr: '', exitCode: 0 };
  };
  return { runner, calls };
}

describe('enablePortShare / disablePortShare', () => {
  it('creates an absent table, leaves one in sync alone, replaces one that differs', async () => {
    const absent = fakeNft(undefined);
    expect(await enablePortShare(absent.runner, share)).toBe('created');
    expect(absent.calls.map((c) => c.args.join(' '))).toEqual(['-j list table inet warren_probe', '-f -']);
    expect(absent.calls[1]!.input).toBe(portShareScript(share));

    const same = fakeNft(fixture());
    expect(await enablePortShare(same.runner, share)).toBe('unchanged');
    expect(same.calls).toHaveLength(1);

    const other = fakeNft(fixture());
    expect(await enablePortShare(other.runner, { ...share, probePort: 40000 })).toBe('replaced');
    expect(other.calls[1]!.input).toContain('udp sport 40000 notrack udp sport set 51820');
  });

  it('validates before reading anything', async () => {
    const f = fakeNft(undefined);
    await expect(enablePortShare(f.runner, { wgPort: 5, probePort: 5 })).rejects.toThrow(PortShareConfigError);
    expect(f.calls).toEqual([]);
  });

  it('removes a present table, counts an absent one as removed already', async () => {
    const present = fakeNft(fixture());
    expect(await disablePortShare(present.runner)).toBe('removed');
    expect(present.calls[1]).toEqual({ args: ['-f', '-'], input: portShareRemovalScript() });
    const absent = fakeNft(undefined);
    expect(await disablePortShare(absent.runner)).toBe('absent');
    expect(absent.calls).toHaveLength(1);
  });

  it('lets any other nft failure through', async () => {
    const broken: Runner = async () => ({ stdout: '', stderr: 'Error: Operation not permitted', exitCode: 1 });
    await expect(enablePortShare(broken, share)).rejects.toThrow(CommandError);
  });
});
