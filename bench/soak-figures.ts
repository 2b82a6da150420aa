// The soak's arithmetic and wording (bench/soak.ts), kept pure so that it is unit-tested:
// residue against a snapshot, the RSS-flatness rule, failure bookkeeping, a seeded random
// source for the kill moments.
import type { NodeState } from '../test/helpers/node-state.js';

/** What a node has that its snapshot had not (or lost), per kind. */
export interface Residue {
  /** Links (host veth ends, in practice) not in the snapshot. */
  veths: string[];
  ports: string[];
  allocations: string[];
  /** nftables rules now minus rules then: any difference is residue. */
  nftRules: number;
  /** What the snapshot had and the node no longer has (the bridge, its rule...). */
  missing: string[];
}

export function residue(baseline: NodeState, now: NodeState): Residue {
  const extra = (then: string[], after: string[]): string[] => after.filter((x) => !then.includes(x));
  return {
    veths: extra(baseline.links, now.links),
    ports: extra(baseline.ovsInterfaces, now.ovsInterfaces),
    allocations: extra(baseline.allocations, now.allocations),
    nftRules: now.nftRules - baseline.nftRules,
    missing: [
      ...extra(now.links, baseline.links).map((l) => `link ${l}`),
      ...extra(now.ovsInterfaces, baseline.ovsInterfaces).map((p) => `OVS interface ${p}`),
      ...extra(now.allocations, baseline.allocations).map((a) => `address ${a}`),
    ],
  };
}

export function residueCount(r: Residue): number {
  return r.veths.length + r.ports.length + r.allocations.length + Math.abs(r.nftRules) + r.missing.length;
}

function named(list: string[], max = 4): string {
  if (list.length === 0) return '';
  return ` (${list.slice(0, max).join(', ')}${list.length > max ? `, +${list.length - max} more` : ''})`;
}

/** "veths 0, OVS ports 0, addresses 0, nft rules +0", naming the first few of each kind found. */
export function formatResidue(r: Residue): string {
  const parts = [
    `veths ${r.veths.length}${named(r.veths)}`,
    `OVS ports ${r.ports.length}${named(r.ports)}`,
    `addresses ${r.allocations.length}${named(r.allocations)}`,
    `nft rules ${r.nftRules >= 0 ? '+' : ''}${r.nftRules}`,
  ];
  if (r.missing.length > 0) parts.push(`missing ${r.missing.length}${named(r.missing)}`);
  return parts.join(', ');
}

/** VmRSS of a /proc/<pid>/status text, in KiB. */
export function vmRssKiB(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

export interface RssRule {
  factor: number;
  slackMiB: number;
}

/** A resident process is flat when its RSS at the end is at most start x 1.2 + 8 MiB. */
export const RSS_RULE: RssRule = { factor: 1.2, slackMiB: 8 };

export function describeRule(rule: RssRule = RSS_RULE): string {
  return `RSS at the end <= RSS at the start x ${rule.factor.toFixed(2)} + ${rule.slackMiB} MiB`;
}

export interface RssVerdict {
  ok: boolean;
  limitKiB: number;
  growthKiB: number;
  /** Growth against the start, in percent. */
  growthPct: number;
}

export function rssVerdict(startKiB: number, endKiB: number, rule: RssRule = RSS_RULE): RssVerdict {
  const limitKiB = startKiB * rule.factor + rule.slackMiB * 1024;
  return { ok: endKiB <= limitKiB, limitKiB, growthKiB: endKiB - startKiB, growthPct: startKiB > 0 ? ((endKiB - startKiB) / startKiB) * 100 : 0 };
}

export function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

/** The first, middle and last of a series (the same element when it is short). */
export function startMiddleEnd<T>(series: readonly T[]): [T, T, T] {
  if (series.length === 0) throw new Error('an empty series has no start');
  return [series[0]!, series[Math.floor((series.length - 1) / 2)]!, series[series.length - 1]!];
}

/** One line per resident process: start, middle and end in MiB, growth, and whether the rule holds. */
export function formatRss(name: string, startKiB: number, middleKiB: number, endKiB: number, rule: RssRule = RSS_RULE): string {
  const v = rssVerdict(startKiB, endKiB, rule);
  const sign = v.growthKiB >= 0 ? '+' : '-';
  return `${name.padEnd(14)} start ${mib(startKiB)} MiB, middle ${mib(middleKiB)} MiB, end ${mib(endKiB)} MiB: `
    + `${sign}${mib(Math.abs(v.growthKiB))} MiB (${sign}${Math.abs(v.growthPct).toFixed(1)}%), limit ${mib(v.limitKiB)} MiB: ${v.ok ? 'flat' : 'GREW'}`;
}

/** A plugin answer that counts as failed: a non-zero exit, or the spec's error JSON on stdout. */
export function isFailure(reply: { exitCode: number; json: Record<string, unknown> | undefined }): boolean {
  return reply.exitCode !== 0 || (reply.json !== undefined && 'code' in reply.json);
}

/** Counts failures and keeps the first few messages. */
export class FailureLog {
  count = 0;
  readonly first: string[] = [];
  constructor(private readonly keep = 5) {}
  add(message: string): void {
    this.count++;
    if (this.first.length < this.keep) this.first.push(message.length > 400 ? `${message.slice(0, 400)}...` : message);
  }
}

/** Whether a /proc/<pid>/environ text (NUL-separated) holds exactly `key=value`. */
export function environHas(environ: string, key: string, value: string): boolean {
  return `\0${environ}`.includes(`\0${key}=${value}\0`) || `\0${environ}`.endsWith(`\0${key}=${value}`);
}

/** Whether it holds `key=` followed by a value starting with `prefix`. */
export function environHasPrefix(environ: string, key: string, prefix: string): boolean {
  return `\0${environ}`.includes(`\0${key}=${prefix}`);
}

/** A seeded source of uniform numbers in [0, 1) (mulberry32): a soak's kill moments can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What one attachment had on the node at a moment: its host veth, its OVS port, its address. */
export interface Pieces {
  veth: boolean;
  port: boolean;
  address: boolean;
}

export function piecesKey(p: Pieces): string {
  const have = [p.veth && 'veth', p.port && 'port', p.address && 'address'].filter(Boolean);
  return have.length === 0 ? 'nothing' : have.join('+');
}

/** Counts of each key, most frequent first: "veth+port+address 12, nothing 3". */
export function formatTally(keys: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  if (counts.size === 0) return 'none';
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ');
}

/** Env knobs: a positive integer, or the default when unset or empty. */
export function intKnob(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative integer`);
  return n;
}
