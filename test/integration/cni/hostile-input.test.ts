// warren-cni under hostile input (issue 10, item 2), property-based (fast-check, seeded):
// configurations and CNI_* environments mutated, the built binary on a real node (netns,
// OVS, host-local). Every call either succeeds, when the mutation was harmless, and then
// its DEL succeeds too and leaves nothing behind, or it exits non-zero with exactly the
// spec's error JSON carrying a defined code, having changed nothing on the node: the node's
// state is compared after every case, and once more at the end against the state before.
//
// "Defined code" is the spec's (1-7, 11, 50, 51) or Warren's own (cni/errors.ts), but never
// 100, Internal: that is what an exception nobody classified becomes, a crash in JSON.
import fc from 'fast-check';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniCode } from '../../../cni/errors.js';
import { SUPPORTED_VERSIONS } from '../../../cni/versions.js';
import { nodeState, type NodeState } from '../../helpers/node-state.js';
import type { Netns } from '../../helpers/netns.js';
import { CNI_PATH, type PluginReply } from '../../helpers/plugin.js';
import { run } from '../../helpers/sh.js';
import { NodeFixture } from './fixture.js';

const SEED = Number(process.env.WARREN_FC_SEED ?? 20_261_129);
const CONFIG_RUNS = 200;
const ENV_RUNS = 120;
const CALL_TIMEOUT_MS = 20_000;
const POD_POOL = 3;

const DEFINED_CODES = new Set<number>(Object.values(CniCode).filter((c) => c !== CniCode.Internal));
const LONG = 'x'.repeat(300);
const MIB = 1 << 20;
const DEEP = 100_000;

let fx: NodeFixture;
let pods: Netns[];
let tmp: string;
let canary: string;
let baseline: NodeState;
const counts = { configCases: 0, envCases: 0, calls: 0, harmless: 0, refused: 0, restored: 0 };
const codes = new Map<number, number>();

// ---------------------------------------------------------------------------------------------
// The required outcome of one call.

function shown(r: PluginReply): string {
  return r.stdout.length > 1500 ? `${r.stdout.slice(0, 1500)}... (${r.stdout.length} bytes)` : r.stdout;
}

/** Success, or exactly one error object of the spec's shape with a defined code. Throws otherwise. */
function judge(what: string, r: PluginReply): 'ok' | 'refused' {
  counts.calls++;
  const fail = (why: string): never => {
    throw new Error(`${what}: ${why}\nexit ${r.exitCode}, stdout: ${shown(r)}`);
  };
  if (/\n\s+at /.test(r.stdout)) fail('a stack trace on stdout');
  if (r.exitCode === 0) {
    if (what.startsWith('ADD') && (!r.json || typeof r.json.cniVersion !== 'string' || !Array.isArray(r.json.ips))) fail('ADD succeeded without a result');
    return 'ok';
  }
  const e = r.json;
  if (!e || typeof e !== 'object' || Array.isArray(e)) fail('stdout is not one JSON object');
  if (r.stdout.trim().includes('\n')) fail('stdout holds more than one line');
  const keys = Object.keys(e!).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k));
  if (keys.length > 0) fail(`unexpected keys ${keys.join(', ')}`);
  if (!(SUPPORTED_VERSIONS as readonly unknown[]).includes(e!.cniVersion)) fail('cniVersion is not a supported version');
  if (typeof e!.code !== 'number' || !DEFINED_CODES.has(e!.code)) fail(`code ${String(e!.code)} is not a defined one`);
  if (typeof e!.msg !== 'string' || e!.msg === '') fail('msg is not a non-empty string');
  if (e!.details !== undefined && typeof e!.details !== 'string') fail('details is not a string');
  codes.set(e!.code as number, (codes.get(e!.code as number) ?? 0) + 1);
  return 'refused';
}

interface Call {
  command: string;
  config: string;
  pod: Netns;
  containerId: string;
  env?: Record<string, string | undefined>;
}

async function call(c: Call): Promise<PluginReply> {
  try {
    return await fx.cni({ command: c.command, config: c.config, containerId: c.containerId, netns: c.pod.path, env: c.env, timeoutMs: CALL_TIMEOUT_MS });
  } catch (err) {
    // execRunner throws only when the plugin did not exit: killed by a signal, or by our timeout.
    throw new Error(`${c.command} did not exit by itself (a signal or a hang over ${CALL_TIMEOUT_MS} ms): ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The node, before and after.

/** host-local allocations of every network under the fixture's data directory (a mutated name makes another). */
function allAllocations(): string[] {
  const out: string[] = [];
  for (const net of readdirSync(fx.dataDir)) {
    const dir = join(fx.dataDir, net);
    if (!statSync(dir).isDirectory()) continue;
    for (const f of readdirSync(dir)) if (f !== 'lock' && !f.startsWith('last_reserved_ip')) out.push(`${net}/${f}`);
  }
  return out.sort();
}

async function podLinks(pod: Netns): Promise<string[]> {
  return (JSON.parse((await pod.exec('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname);
}

const vsctl = async (...args: string[]): Promise<string> => (await run('ovs-vsctl', [`--db=${fx.ovs.db}`, ...args])).trim();

/** The valid ADD and DEL that make the node-wide pieces (bridge, masquerade chain) as the valid config wants them. */
async function warm(): Promise<void> {
  const config = JSON.stringify(fx.config());
  const add = await call({ command: 'ADD', config, pod: pods[0]!, containerId: 'warm' });
  expect(add.exitCode, add.stdout).toBe(0);
  const del = await call({ command: 'DEL', config, pod: pods[0]!, containerId: 'warm' });
  expect(del.exitCode, del.stdout).toBe(0);
}

/**
 * A harmless mutated config may rightly change node-wide pieces that outlive its pod: a
 * bridge of another name, its masquerade chain, warren0's chain rewritten (another podCIDR)
 * or removed (ipMasq false). Put back as the valid config has them.
 */
async function restoreNodeWide(): Promise<void> {
  for (const br of (await vsctl('list-br')).split('\n').filter(Boolean)) if (br !== 'warren0') await vsctl('del-br', br);
  const table = JSON.parse((await fx.node.exec('nft', ['-j', 'list', 'table', 'inet', 'warren'])).stdout) as { nftables: { chain?: { name: string } }[] };
  for (const o of table.nftables) {
    if (o.chain && o.chain.name !== 'postrouting_warren0') await fx.node.exec('nft', ['delete', 'chain', 'inet', 'warren', o.chain.name]);
  }
  await warm();
}

/** After a failed case: back to the baseline, so that the next case (a shrink of this one) is judged on its own. */
async function repair(pod: Netns): Promise<void> {
  for (const l of await podLinks(pod)) if (l !== 'lo') await pod.exec('ip', ['link', 'del', l], { allowFailure: true });
  for (const port of (await vsctl('list-ports', 'warren0')).split('\n').filter(Boolean)) await vsctl('del-port', port);
  const links = (await nodeState(fx.node, fx.ovs, fx.ipamDir)).links;
  for (const l of links) if (l.startsWith('wrn')) await fx.node.exec('ip', ['link', 'del', l], { allowFailure: true });
  for (const a of allAllocations()) rmSync(join(fx.dataDir, a));
  await restoreNodeWide();
}

/** After a case: the node as before it, no allocation anywhere, the pod back to lo alone. */
async function expectNodeUnchanged(what: string, pod: Netns, harmless: boolean): Promise<void> {
  const [after, inPod] = await Promise.all([nodeState(fx.node, fx.ovs, fx.ipamDir), podLinks(pod)]);
  let now = after;
  const allocations = allAllocations();
  const problems: string[] = [];
  if (allocations.length > 0) problems.push(`addresses still allocated: ${allocations.join(', ')}`);
  if (!isDeepStrictEqual(inPod, ['lo'])) problems.push(`the pod holds ${inPod.join(', ')}`);
  // What the restore cannot remove (a pod's veth or port) still differs afterwards.
  if (harmless && problems.length === 0 && !isDeepStrictEqual(now, baseline)) {
    counts.restored++;
    await restoreNodeWide();
    now = await nodeState(fx.node, fx.ovs, fx.ipamDir);
  }
  if (!isDeepStrictEqual(now, baseline)) problems.push(`node state ${JSON.stringify(now)}, before ${JSON.stringify(baseline)}`);
  if (problems.length > 0) {
    await repair(pod);
    throw new Error(`${what} left the node changed: ${problems.join('; ')}`);
  }
}

/**
 * One case's calls, then the node compared whatever they answered: a case that failed on an
 * answer is still checked (and the node repaired), so that the next case, a shrink of this
 * one perhaps, starts from the baseline. `calls` tells whether a harmless ADD (and its DEL) ran.
 */
async function runCase(what: string, pod: Netns, fresh: boolean, calls: () => Promise<boolean>): Promise<void> {
  let failure: unknown;
  let harmless = false;
  try {
    harmless = await calls();
  } catch (err) {
    failure = err;
  }
  try {
    await expectNodeUnchanged(what, pod, harmless);
  } catch (err) {
    failure ??= err;
  }
  if (fresh) await pod.destroy();
  if (failure !== undefined) throw failure;
}

/** After an ADD that succeeded: its checks, then its DEL whatever they found (which must succeed too). */
async function afterHarmlessAdd(what: string, checks: () => Promise<void>, del: () => Promise<PluginReply>): Promise<boolean> {
  let failure: unknown;
  try {
    await checks();
  } catch (err) {
    failure = err;
  }
  const r = await del();
  try {
    judge(`DEL after ${what}`, r);
    if (r.exitCode !== 0) throw new Error(`DEL after ${what} failed: ${shown(r)}`);
  } catch (err) {
    failure ??= err;
  }
  if (failure !== undefined) throw failure;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Generators.

/** Values of the wrong type or hostile content, for any field. Shell canaries must stay inert. */
function hostileValue(): fc.Arbitrary<unknown> {
  const scalars = fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1.5, -1400, 1e308, -1e308, 2 ** 31, 2 ** 53 + 2, 65536,
    '', ' ', '/', '.', '..', '../../etc', 'a/b', 'a b', ' warren0', 'warren0 ', 'a:b', 'a%d', 'ü', 'naïve', 'à', '😀', '\u0000', 'a\u0000b',
    '\n', 'a\nb', '\u202e', '\ufeff', LONG, '-1', '1400', 'true', 'null', '{}', '[]', '"', '\\', '__proto__', 'constructor',
    `$(touch ${canary})`, `;touch ${canary}`, `\`touch ${canary}\``, `x\nlink del warren0`,
  );
  const shapes = fc.constantFrom<unknown>([], {}, [[]], [null], [LONG], { a: { b: { c: [1, [2, [3]]] } } }, JSON.parse('{"__proto__":{"polluted":true}}'),
    JSON.parse('{"constructor":{"prototype":{"polluted":true}}}'));
  return fc.oneof(
    { weight: 5, arbitrary: scalars },
    { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
    { weight: 1, arbitrary: shapes },
  );
}

/** IPAM plugin names that exist on CNI_PATH but are not host-local would run as IPAM: not ours to try. */
function notAnotherPlugin(v: unknown): boolean {
  if (typeof v !== 'string' || v === 'host-local' || v === '') return true;
  try {
    return !statSync(join(CNI_PATH, v)).isFile();
  } catch {
    return true;
  }
}

type Mutation =
  | { op: 'delete'; field: string }
  | { op: 'set'; field: string; value: unknown }
  | { op: 'ipam-delete'; field: string }
  | { op: 'ipam-set'; field: string; value: unknown };

function fieldValues(): Record<string, fc.Arbitrary<unknown>> {
  const any = hostileValue();
  const or = (...vs: unknown[]): fc.Arbitrary<unknown> => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...vs) }, { weight: 1, arbitrary: any });
  return {
    cniVersion: or('0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.1.0', '1.2.0', '2.0.0', '1.0', '1', 'v1.0.0', '1.0.0 ', '01.0.0', '1.0.0.0', '99999999999999999999.0.0'),
    name: or('a/b', '..', '../escape', '.', 'a b', LONG, 'ü', '😀', 'x'.repeat(5000), 'other-net', '-x', '_x'),
    type: or('Warren', 'warren ', 'bridge', 'host-local', '../warren', 'warren\u0000'),
    bridge: or('lo', 'ovs-netdev', 'warren0', 'a%d', 'eth%d', 'brü', 'à', '😀', 'a b', 'a/b', '..', '.', 'x'.repeat(16), 'a\u0000b', 'a:b', 'br-hx', 'wrn0123456789ab'),
    mtu: fc.oneof(fc.constantFrom(-1, 0, 575, 576, 1500, 65535, 65536, 1400.5, 1e308, -1e308, 2 ** 53, '1400', null, true, [1400], { value: 1400 }), fc.integer(), fc.double(), any),
    podCIDR: or('10.244.0.0/33', '10.244.0.1/16', '10.244.0.0', '10.244.0.0/-1', '300.1.1.1/8', '::/0', 'fd00::/48', '192.168.0.0/16', '10.244.3.0/24', '0.0.0.0/0',
      '10.244.0.0/16 ', '10.244.0.0/16\nflush ruleset', '10.244.0.0/16"; flush ruleset; "'),
    isGateway: or(false, true, 'true', 0, 1, 'yes'),
    ipMasq: or(false, true, 'false', 0, 1, 'no'),
    ovsdb: or('unix:/nonexistent/db.sock', 'tcp:127.0.0.1:1', 'tcp:10.255.255.1:6640', 'ssl:127.0.0.1:1', 'unix:', 'tcp:', 'tcp:127.0.0.1:99999', 'tcp::', 'tcp:127.0.0.1', 'unix:/x\u0000y', 'punix:/x',
      '/run/openvswitch/db.sock', `unix:${LONG}`),
    logFile: fc.oneof(fc.constantFrom('relative.log', '', '/', join(tmp, 'log', 'cni.log'), join(tmp, 'log')), any.filter((v) => typeof v !== 'string' || !v.startsWith('/'))),
    dns: or({ nameservers: ['10.96.0.10'] }, { nameservers: 5 }, { search: [null] }, 'x', [1, 2]),
    args: or({ cni: { ips: ['10.244.3.250'] } }, { cni: { ips: ['garbage'] } }, { cni: 5 }, { cni: { ips: '10.244.3.250' } }),
    runtimeConfig: or({ ips: ['10.244.3.251/24'] }, { ipRanges: [[{ subnet: 'bogus' }]] }, { ips: 5 }),
    capabilities: or({ ips: true }, { ips: 'yes' }),
    prevResult: or({ ips: [null] }, { ips: [{ address: 'garbage' }] }, { interfaces: 'x' }),
    cniVersions: or(['1.0.0'], ['9.9.9'], 'x'),
    'cni.dev/valid-attachments': or([], [null], [5], [{ containerID: 5 }], [{ containerID: 'x', ifname: 'eth0' }], 'x', {}),
    // Keys Warren does not know, prototype pollution among them (computed: an own property).
    ['__proto__']: any,
    constructor: any,
    prototype: any,
    brdige: any,
    toString: any,
    '': any,
    'cni.dev/unknown': any,
    [LONG]: any,
  };
}

function ipamValues(): Record<string, fc.Arbitrary<unknown>> {
  const any = hostileValue();
  const or = (...vs: unknown[]): fc.Arbitrary<unknown> => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...vs) }, { weight: 1, arbitrary: any });
  return {
    type: or('nope', '..', '.', 'host-local ', '../host-local', 'HOST-LOCAL', LONG).filter(notAnotherPlugin),
    ranges: or('x', [], [[]], [[{}]], [[{ subnet: 'bogus' }]], [[{ subnet: '10.244.3.0/33' }]], [[{ subnet: '10.244.9.0/32' }]],
      [[{ subnet: '10.244.3.0/24', rangeStart: '10.244.4.1' }]], [[{ subnet: '192.168.50.0/24' }]], [[{ subnet: 'fd00::/120' }]],
      [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.0' }]], [[{ subnet: '10.244.3.0/24' }], [{ subnet: '10.244.3.0/24' }]], [[{ subnet: '10.244.3.0/24', rangeEnd: '10.244.3.1' }]]),
    routes: or([{ dst: 'x' }], [{ dst: '0.0.0.0/0', gw: 'x' }], 'x', [{ dst: '192.168.77.0/24', gw: '172.31.255.1' }], [{ dst: '0.0.0.0/0' }], null),
    // Strings would be directories host-local writes to: only other types.
    dataDir: any.filter((v) => typeof v !== 'string'),
    subnet: or('10.244.3.0/24', 'bogus'),
    gateway: or('10.244.3.1', 'bogus'),
    ['__proto__']: any,
  };
}

function mutation(): fc.Arbitrary<Mutation> {
  const fields = fieldValues();
  const ipam = ipamValues();
  return fc.oneof(
    // ovsdb and ipam.dataDir are never deleted: their defaults are the host's own OVS and /var/lib/cni.
    { weight: 2, arbitrary: fc.constantFrom('cniVersion', 'name', 'type', 'mtu', 'podCIDR', 'ipam').map((field): Mutation => ({ op: 'delete', field })) },
    { weight: 8, arbitrary: fc.constantFrom(...Object.keys(fields)).chain((field) => fields[field]!.map((value): Mutation => ({ op: 'set', field, value }))) },
    { weight: 1, arbitrary: fc.constantFrom('type', 'ranges').map((field): Mutation => ({ op: 'ipam-delete', field })) },
    { weight: 3, arbitrary: fc.constantFrom(...Object.keys(ipam)).chain((field) => ipam[field]!.map((value): Mutation => ({ op: 'ipam-set', field, value }))) },
  );
}

/** Sets a key as an own property, "__proto__" included (an assignment would set the prototype). */
function put(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function applyMutations(base: Record<string, unknown>, ms: readonly Mutation[]): Record<string, unknown> {
  const c = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  for (const m of ms) {
    if (m.op === 'delete') delete c[m.field];
    else if (m.op === 'set') put(c, m.field, m.value);
    else {
      const ipam = c.ipam;
      if (ipam === null || typeof ipam !== 'object' || Array.isArray(ipam)) continue;
      if (m.op === 'ipam-delete') delete (ipam as Record<string, unknown>)[m.field];
      else put(ipam as Record<string, unknown>, m.field, m.value);
    }
  }
  return c;
}

/** A prevResult for CHECK: ADD's real one, a hostile value, or the real one with one part replaced. */
type PrevResult = 'real' | { whole: unknown } | { at: string; value: unknown };

function prevResultArbitrary(): fc.Arbitrary<PrevResult | undefined> {
  const at = fc.constantFrom('ips', 'routes', 'interfaces', 'dns', 'ips.0', 'routes.0', 'interfaces.0', 'ips.0.address', 'ips.0.gateway', 'ips.0.interface',
    'routes.0.dst', 'routes.0.gw', 'interfaces.2.name', 'interfaces.2.sandbox', 'cniVersion');
  return fc.option(fc.oneof(
    fc.constant<PrevResult>('real'),
    hostileValue().map((whole): PrevResult => ({ whole })),
    fc.record({ at, value: hostileValue() }),
  ), { nil: undefined });
}

/** A result of the shape ADD gives, for a CHECK with no ADD before it. */
const TYPICAL_RESULT = {
  cniVersion: '1.0.0', interfaces: [{ name: 'warren0' }, { name: 'wrn000000000000' }, { name: 'eth0', sandbox: '/run/netns/x' }],
  ips: [{ address: '10.244.3.9/24', gateway: '10.244.3.1', interface: 2 }], routes: [{ dst: '0.0.0.0/0', gw: '10.244.3.1' }], dns: {},
};

function prevResultOf(p: Exclude<PrevResult, 'real'> | 'real', real: unknown): unknown {
  if (p === 'real') return real;
  if ('whole' in p) return p.whole;
  const out = JSON.parse(JSON.stringify(real)) as Record<string, unknown>;
  const path = p.at.split('.');
  let o: unknown = out;
  for (const key of path.slice(0, -1)) o = o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[key] : undefined;
  if (o !== null && typeof o === 'object') put(o as Record<string, unknown>, path.at(-1)!, p.value);
  return out;
}

/** Raw stdin, described small (the counterexample stays printable) and made in the test. */
const RAW_KINDS = ['empty', 'space', 'null', 'true', 'number', 'string', 'array', 'array-of-object', 'open-brace', 'close-brace', 'empty-object',
  'nul', 'bom', 'truncated', 'trailing-garbage', 'twice', 'duplicate-keys', 'junk-1mib', 'whitespace-1mib', 'unknown-field-1mib', 'args-1mib',
  'deep-unknown', 'deep-args', 'deep-mtu', 'deep-array', 'binary', 'edited'] as const;
type RawKind = (typeof RAW_KINDS)[number];
interface RawCase { raw: RawKind; at: number; text: string }

function rawText(r: RawCase, valid: Record<string, unknown>): string {
  const v = JSON.stringify(valid);
  const withField = (key: string, json: string): string => `${v.slice(0, -1)},${JSON.stringify(key)}:${json}}`;
  const deepObject = (): string => '{"a":'.repeat(DEEP) + '1' + '}'.repeat(DEEP);
  switch (r.raw) {
    case 'empty': return '';
    case 'space': return ' \n\t';
    case 'null': return 'null';
    case 'true': return 'true';
    case 'number': return '1400';
    case 'string': return JSON.stringify(v);
    case 'array': return '[]';
    case 'array-of-object': return `[${v}]`;
    case 'open-brace': return '{';
    case 'close-brace': return '}';
    case 'empty-object': return '{}';
    case 'nul': return '\u0000';
    case 'bom': return `\ufeff${v}`;
    case 'truncated': return v.slice(0, r.at % v.length);
    case 'trailing-garbage': return `${v}}`;
    case 'twice': return `${v}\n${v}`;
    case 'duplicate-keys': return `${v.slice(0, -1)},"type":"bridge","cniVersion":"9.9.9"}`;
    case 'junk-1mib': return 'x'.repeat(MIB);
    case 'whitespace-1mib': return ' '.repeat(MIB) + v;
    case 'unknown-field-1mib': return withField('pad', JSON.stringify('x'.repeat(MIB)));
    case 'args-1mib': return withField('args', JSON.stringify({ pad: 'x'.repeat(MIB) }));
    case 'deep-unknown': return withField('x', deepObject());
    case 'deep-args': return withField('args', deepObject());
    case 'deep-mtu': return withField('mtu', '['.repeat(DEEP) + ']'.repeat(DEEP));
    case 'deep-array': return '['.repeat(DEEP) + ']'.repeat(DEEP);
    case 'binary': return r.text;
    case 'edited': {
      const i = r.at % v.length;
      return v.slice(0, i) + r.text + v.slice(i + 1);
    }
  }
}

const rawCase: fc.Arbitrary<RawCase> = fc.record({
  raw: fc.constantFrom(...RAW_KINDS),
  at: fc.nat(),
  text: fc.string({ unit: 'binary', maxLength: 8 }),
});

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  fx = await NodeFixture.start();
  tmp = mkdtempSync(join(tmpdir(), 'warren-hostile-'));
  mkdirSync(join(tmp, 'empty-dir'));
  writeFileSync(join(tmp, 'regular-file'), 'not a namespace\n');
  canary = join(tmp, 'canary');
  pods = await Promise.all(Array.from({ length: POD_POOL }, () => fx.pod()));
  await warm(); // the node-wide pieces exist, as after a node's first pod
  baseline = await nodeState(fx.node, fx.ovs, fx.ipamDir);
  expect(baseline.ovsInterfaces).toContain('warren0');
  expect(baseline.nftRules).toBe(1);
});

afterAll(async () => {
  const histogram = [...codes.entries()].sort(([a], [b]) => a - b).map(([c, n]) => `${c}:${n}`).join(' ');
  console.log(`hostile input (seed ${SEED}): ${counts.configCases} mutated configs and ${counts.envCases} mutated environments, ` +
    `${counts.calls} plugin calls (${counts.harmless} harmless ADDs, ${counts.refused} refused, node-wide pieces put back after ${counts.restored}); error codes ${histogram}`);
  await fx?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('warren-cni under hostile input', () => {
  it(`answers ${CONFIG_RUNS} mutated configurations with success or the spec's error, changing nothing`, async () => {
    const verbs = fc.constantFrom('ADD', 'ADD', 'ADD', 'ADD', 'ADD', 'CHECK', 'DEL', 'GC', 'STATUS');
    const configCase = fc.record({
      verb: verbs,
      input: fc.oneof({ weight: 5, arbitrary: fc.array(mutation(), { minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: rawCase }),
      prevResult: prevResultArbitrary(),
      pod: fc.nat({ max: POD_POOL }), // POD_POOL: a fresh namespace
    });
    type ConfigCase = typeof configCase extends fc.Arbitrary<infer T> ? T : never;
    const set = (field: string, value: unknown): Mutation => ({ op: 'set', field, value });
    const ipamSet = (field: string, value: unknown): Mutation => ({ op: 'ipam-set', field, value });
    const add = (...input: Mutation[]): ConfigCase => ({ verb: 'ADD', input, prevResult: undefined, pod: 0 });
    // Inputs that found bugs in the plugin, run first (fast-check counts them in numRuns).
    const found: ConfigCase[] = [
      add(ipamSet('routes', [{ dst: 'x' }])), // host-local's own code 999 was passed on as Warren's
      add(set('bridge', 'lo')), // not an OVS bridge: got the gateway address and a masquerade chain, then 104
      add(set('bridge', 'ovs-netdev')),
      add(set('bridge', 'a%d')), // renamed by the kernel: the OVS bridge row and its chain stayed after 101
      add(set('bridge', 'à')), // refused by the kernel (byte 0xa0 is a space to it): the same
      add(set('bridge', 'br-hx'), ipamSet('dataDir', [])), // a failed ADD left the bridge it had made, and its chain
      add({ op: 'delete', field: 'podCIDR' }, ipamSet('dataDir', [])), // a failed ADD removed warren0's masquerade chain
      { verb: 'ADD', input: { raw: 'deep-unknown', at: 0, text: '' }, prevResult: undefined, pod: 0 }, // 100: JSON.stringify's stack overflow
      { verb: 'ADD', input: { raw: 'deep-args', at: 0, text: '' }, prevResult: undefined, pod: 0 },
      { verb: 'GC', input: [set('cni.dev/valid-attachments', [null])], prevResult: undefined, pod: 0 }, // 100
      { verb: 'ADD', input: [set('mtu', 1400)], prevResult: { at: 'ips.0.address', value: 'garbage' }, pod: 1 }, // CHECK: 100
      { verb: 'ADD', input: [set('mtu', 1400)], prevResult: { at: 'ips.0', value: null }, pod: 1 },
      { verb: 'CHECK', input: [set('prevResult', { interfaces: [null] })], prevResult: undefined, pod: 0 },
      add(set('ovsdb', 'tcp:127.0.0.1:99999')), // 100: net.connect's RangeError
    ];
    await fc.assert(fc.asyncProperty(configCase, async (c) => {
      const n = counts.configCases++;
      const fresh = c.pod === POD_POOL;
      const pod = fresh ? await fx.pod() : pods[c.pod]!;
      const containerId = `hc${n}`;
      const late = c.verb === 'GC' || c.verb === 'STATUS';
      const base = fx.config(late ? { cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] } : {});
      let config: string;
      let object: Record<string, unknown> | undefined;
      if (Array.isArray(c.input)) {
        object = applyMutations(base, c.input);
        config = JSON.stringify(object);
      } else {
        config = rawText(c.input, base);
      }
      const label = (verb: string): string => `${verb} #${n}`;
      await runCase(label(c.verb), pod, fresh, async () => {
        if (c.verb !== 'ADD') {
          if (c.verb === 'CHECK' && object && !('prevResult' in object) && c.prevResult !== undefined) {
            config = JSON.stringify({ ...object, prevResult: prevResultOf(c.prevResult, TYPICAL_RESULT) });
          }
          return judge(label(c.verb), await call({ command: c.verb, config, pod, containerId })) === 'ok';
        }
        const add = await call({ command: 'ADD', config, pod, containerId });
        if (add.exitCode !== 0) {
          judge(label('ADD'), add);
          counts.refused++;
          return false;
        }
        counts.harmless++;
        return afterHarmlessAdd(label('ADD'), () => {
          judge(label('ADD'), add);
          if (!object || c.prevResult === undefined) return Promise.resolve();
          // CHECK of what ADD made, against its real result or a hostile one.
          const prevResult = prevResultOf(c.prevResult, add.json);
          return call({ command: 'CHECK', config: JSON.stringify({ ...object, prevResult }), pod, containerId }).then((r) => void judge(label('CHECK'), r));
        }, () => call({ command: 'DEL', config, pod, containerId }));
      });
    }), { seed: SEED, numRuns: CONFIG_RUNS, examples: found.map((c) => [c]) });
  }, 600_000);

  it(`answers ${ENV_RUNS} mutated CNI_* environments with the code their fault calls for`, async () => {
    /** Each value with the class of its fault: what ADD must answer with it. */
    type Fault = 'env' | 'netns' | 'ipam' | 'any' | 'none';
    const v = (fault: Fault, ...values: (string | undefined)[]): fc.Arbitrary<[string | undefined, Fault]> =>
      fc.constantFrom(...values).map((x) => [x, fault] as [string | undefined, Fault]);
    const random = (fault: Fault, s: fc.Arbitrary<string>): fc.Arbitrary<[string | undefined, Fault]> =>
      s.filter((x) => !x.includes('\u0000')).map((x) => [x, fault] as [string | undefined, Fault]);
    // Faulty values three times as often as harmless ones: a harmless ADD and its DEL cost four refusals.
    const w = (n: number, arbitrary: fc.Arbitrary<[string | undefined, Fault]>) => ({ weight: n, arbitrary });
    const vars: Record<string, fc.Arbitrary<[string | undefined, Fault]>> = {
      CNI_COMMAND: fc.oneof(
        v('env', undefined, '', 'add', 'Add', ' ADD', 'ADD ', 'ADD\n', 'RESTART', 'DELETE', 'VERSIONS', LONG, '😀'),
        random('env', fc.string({ maxLength: 10 }).filter((x) => !['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'].includes(x))),
      ),
      CNI_CONTAINERID: fc.oneof(
        w(6, v('env', undefined, '', 'a/b', '../x', '.hidden', '-x', ' x', 'x ', 'ü', 'a:b', 'a\nb', '😀', '$(id)')),
        w(1, v('none', LONG, 'A.b_c-1', '0')),
        w(1, random('none', fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,80}$/))),
      ),
      CNI_NETNS: fc.oneof(
        w(1, v('env', undefined, '')),
        w(3, v('netns', '/nonexistent', '/run/netns/hx-does-not-exist', join(tmp, 'regular-file'), join(tmp, 'empty-dir'), '/run/netns', 'relative', '/dev/null', '/proc/self/ns', LONG)),
        w(1, v('any', '/proc/self/ns/uts')),
      ),
      CNI_IFNAME: fc.oneof(
        w(6, v('env', undefined, '', 'x'.repeat(16), 'a/b', '.', '..', 'a b', 'a:b', 'eth%d', 'éé', 'à', '😀', ' eth0', '\teth0', 'eth0\n')),
        w(1, v('none', 'eth1', 'net1', 'x'.repeat(15), 'a.b', 'A-b_c')),
        w(1, v('any', 'lo')),
        w(1, random('none', fc.stringMatching(/^[a-z][a-z0-9]{1,14}$/).filter((x) => x !== 'lo'))),
        w(2, random('any', fc.string({ maxLength: 20 }))),
      ),
      CNI_PATH: fc.oneof(
        w(1, v('env', undefined, '')),
        w(3, v('ipam', '/nonexistent', ':', '::::', join(tmp, 'empty-dir'), join(CNI_PATH, 'host-local'), '/usr/lib', 'relative/dir', '.', `/${LONG}`)),
        w(1, v('none', `/nonexistent:${CNI_PATH}`, `${CNI_PATH}:`, `:${CNI_PATH}`, `${CNI_PATH}/`, `${CNI_PATH}/../cni`)),
      ),
      CNI_ARGS: fc.oneof(
        w(2, v('env', 'garbage', '=', '=x', ';=;', 'a;b', 'K8S_POD_NAME')),
        w(1, v('none', undefined, '', 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p', `IgnoreUnknown=1;K8S_POD_NAME=${LONG}`,
          'IgnoreUnknown=1;K8S_POD_NAME=a"b\\c', 'IgnoreUnknown=1;K8S_POD_NAME=😀', 'IP=10.244.3.250')),
        // host-local takes no "=" in a value and no empty pair (Warren does), nor a key it does not know without IgnoreUnknown.
        w(2, v('any', 'IgnoreUnknown=true;X=Y=Z', ';;', 'K8S_POD_NAME=x', 'IP=garbage', 'IP=10.244.3.1', 'IgnoreUnknown=1;IP=8.8.8.8')),
        w(1, random('any', fc.string({ maxLength: 30 }))),
      ),
    };
    const envCase = fc.record({
      verb: fc.constantFrom('ADD', 'ADD', 'ADD', 'ADD', 'DEL', 'CHECK'),
      vars: fc.uniqueArray(fc.constantFrom(...Object.keys(vars)), { minLength: 1, maxLength: 2 })
        .chain((names) => fc.tuple(...names.map((name) => vars[name]!.map(([value, fault]) => ({ name, value, fault }))))),
      pod: fc.nat({ max: POD_POOL }),
    });
    /**
     * What ADD must answer: the plugin checks the environment (4), then the netns (3), then
     * finds IPAM (7). A value of unknown fault may be of the first kind: only 4 outranks it.
     */
    const expectedForAdd = (faults: Fault[]): number | 'success' | 'either' => {
      if (faults.includes('env')) return CniCode.InvalidEnvironment;
      if (faults.includes('any')) return 'either';
      if (faults.includes('netns')) return CniCode.UnknownContainer;
      if (faults.includes('ipam')) return CniCode.InvalidConfig;
      return 'success';
    };

    type EnvCase = typeof envCase extends fc.Arbitrary<infer T> ? T : never;
    const one = (name: string, value: string, fault: Fault): EnvCase => ({ verb: 'ADD', vars: [{ name, value, fault }], pod: 0 });
    // Inputs that found bugs in the plugin, run first.
    const found: EnvCase[] = [
      one('CNI_NETNS', join(tmp, 'regular-file'), 'netns'), // was 101 "ip failed", after an address was taken and given back
      one('CNI_NETNS', join(tmp, 'empty-dir'), 'netns'),
      one('CNI_IFNAME', 'eth%d', 'env'), // the kernel names it eth0: was 101
      one('CNI_IFNAME', 'à', 'env'), // the kernel refuses it: was 101
    ];
    await fc.assert(fc.asyncProperty(envCase, async (c) => {
      const n = counts.envCases++;
      const fresh = c.pod === POD_POOL;
      const pod = fresh ? await fx.pod() : pods[c.pod]!;
      const containerId = `he${n}`;
      const env: Record<string, string | undefined> = {};
      for (const { name, value } of c.vars) env[name] = value;
      const config = JSON.stringify(fx.config(c.verb === 'CHECK' ? { prevResult: { ips: [{ address: '10.244.3.9/24', gateway: '10.244.3.1' }] } } : {}));
      const label = `${c.verb} #${n} with ${JSON.stringify(env)}`;
      await runCase(label, pod, fresh, async () => {
        const r = await call({ command: c.verb, config, pod, containerId, env });
        const want = c.verb === 'ADD' ? expectedForAdd(c.vars.map((x) => x.fault)) : 'either';
        const expectation = async (): Promise<void> => {
          const outcome = judge(label, r);
          if (want === 'success' && outcome !== 'ok') throw new Error(`${label}: a harmless environment was refused: ${shown(r)}`);
          if (typeof want === 'number' && r.json?.code !== want) throw new Error(`${label}: code ${String(r.json?.code)}, expected ${want}: ${shown(r)}`);
        };
        if (c.verb !== 'ADD' || r.exitCode !== 0) {
          await expectation();
          if (c.verb === 'ADD') counts.refused++;
          return r.exitCode === 0;
        }
        counts.harmless++;
        return afterHarmlessAdd(label, expectation, () => call({ command: 'DEL', config, pod, containerId, env }));
      });
    }), { seed: SEED, numRuns: ENV_RUNS, examples: found.map((c) => [c]) });
  }, 600_000);

  it('leaves the node as it was before the first case', async () => {
    expect(await nodeState(fx.node, fx.ovs, fx.ipamDir)).toEqual(baseline);
    expect(allAllocations()).toEqual([]);
    for (const pod of pods) expect(await podLinks(pod)).toEqual(['lo']);
    expect(existsSync(canary), 'a shell ran a value from the config or the environment').toBe(false);
  });
});
