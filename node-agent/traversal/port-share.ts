// Lets the agent speak from WireGuard's UDP port. WireGuard (kernel or wireguard-go) owns
// WGPORT and Node has no raw sockets, so the agent binds its own PROBEPORT and one
// nftables table rewrites ports statelessly, in the node's network namespace:
//   output:     udp sport PROBEPORT -> WGPORT. The NAT in front maps the agent's datagrams
//               exactly like WireGuard's own, so STUN learns WireGuard's public mapping and
//               a small-TTL punch opens WireGuard's own hole.
//   prerouting: STUN arriving at WGPORT -> PROBEPORT, so the answers reach the agent and
//               WireGuard never sees them.
// Both chains run at raw priority, before conntrack, and `notrack` what they rewrite: the
// node's conntrack never records a flow that could be NATed or clash with WireGuard's.
// `udp sport set`/`udp dport set` update the UDP checksum incrementally (nft's payload
// write with inet checksum; on a CHECKSUM_PARTIAL packet it rightly leaves the field, the
// sum being finished later over the new port). test/integration/node-agent/traversal proves
// both cases with receivers that verify.
//
// Telling STUN from WireGuard, exactly: every WireGuard message starts with a type byte
// 1-4 and three zero bytes, and both implementations drop anything else. The inbound rule
// wants the magic cookie at payload offset 4, the two top bits of the STUN type zero, and
// payload bytes 1-3 not all zero (a Binding message has method bits in byte 1 and a
// non-zero length). So no datagram WireGuard would accept is ever diverted. The cookie
// alone would not be enough: a data message carries its receiver index at offset 4 for a
// whole session, so an index equal to the cookie (2^-32 per handshake, not per packet)
// would divert every packet of that session. The rule's cheapest test (the port) comes
// first: WireGuard's packets leave at the second or third comparison.
import { isDeepStrictEqual } from 'node:util';
import { nftApply, nftJsonIfExists } from '../../lib/nft.js';
import type { Runner } from '../../lib/runner.js';
import { MAGIC_COOKIE } from '../nat/stun.js';
import { PortShareConfigError } from './errors.js';
import { PORT_SHARE_TABLE, PORT_SHARE_VERSION } from './knobs.js';

export interface PortShare {
  /** WireGuard's listen port: what the world sees. */
  wgPort: number;
  /** The agent's own socket: never seen outside the node. */
  probePort: number;
  /** The nftables table (family inet) the rewrite owns; PORT_SHARE_TABLE by default. */
  table?: string;
}

interface Checked {
  wgPort: number;
  probePort: number;
  table: string;
}

// The table name goes into a script: only plain identifiers, nothing nft would parse.
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

function check(o: PortShare): Checked {
  const table = o.table ?? PORT_SHARE_TABLE;
  for (const [name, port] of [['wgPort', o.wgPort], ['probePort', o.probePort]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PortShareConfigError(`${name} ${port} is not a UDP port`);
  }
  if (o.wgPort === o.probePort) throw new PortShareConfigError(`wgPort and probePort are both ${o.wgPort}: the agent needs a port of its own`);
  if (!TABLE_NAME.test(table)) throw new PortShareConfigError(`table ${JSON.stringify(table)} is not a plain nftables identifier`);
  return { wgPort: o.wgPort, probePort: o.probePort, table };
}

function comments(c: Checked): { output: string; prerouting: string } {
  return {
    output: `warren-probe v${PORT_SHARE_VERSION}: from ${c.probePort} leaves as ${c.wgPort}`,
    prerouting: `warren-probe v${PORT_SHARE_VERSION}: STUN to ${c.wgPort} goes to ${c.probePort}`,
  };
}

/** Pure: the script that creates or replaces the table in one transaction (the add-then-delete pair makes it succeed whether the table exists or not). */
export function portShareScript(o: PortShare): string {
  const c = check(o);
  const comment = comments(c);
  const cookie = `0x${MAGIC_COOKIE.toString(16)}`;
  return [
    `add table inet ${c.table}`,
    `delete table inet ${c.table}`,
    `table inet ${c.table} {`,
    '  chain output {',
    '    type filter hook output priority raw; policy accept;',
    `    udp sport ${c.probePort} notrack udp sport set ${c.wgPort} counter comment "${comment.output}"`,
    '  }',
    '  chain prerouting {',
    '    type filter hook prerouting priority raw; policy accept;',
    // th,96,32: payload bytes 4-7; th,64,8: payload byte 0; th,72,24: payload bytes 1-3.
    `    udp dport ${c.wgPort} @th,96,32 ${cookie} @th,64,8 & 0xc0 == 0x0 @th,72,24 != 0x0 fib daddr type local notrack udp dport set ${c.probePort} counter comment "${comment.prerouting}"`,
    '  }',
    '}',
  ].join('\n') + '\n';
}

/** Pure: removes the table whether it exists or not, in one transaction. */
export function portShareRemovalScript(table: string = PORT_SHARE_TABLE): string {
  check({ wgPort: 1, probePort: 2, table });
  return `add table inet ${table}\ndelete table inet ${table}\n`;
}

interface ListedChain {
  name: string;
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

interface ListedRule {
  chain: string;
  comment?: string;
  expr?: unknown[];
}

function listedObjects(listed: unknown): { chains: ListedChain[]; rules: ListedRule[] } {
  const items = ((listed as { nftables?: Record<string, unknown>[] } | undefined)?.nftables ?? []);
  return {
    chains: items.filter((o) => 'chain' in o).map((o) => o.chain as ListedChain),
    rules: items.filter((o) => 'rule' in o).map((o) => o.rule as ListedRule),
  };
}

const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const raw = (offset: number, len: number) => ({ payload: { base: 'th', offset, len } });
const match = (op: string, left: unknown, right: unknown) => ({ match: { op, left, right } });

/** Pure: each chain's one rule as `nft -j` prints it, counters left out. */
export function expectedPortShareRules(o: PortShare): Record<'output' | 'prerouting', { comment: string; expr: unknown[] }> {
  const c = check(o);
  const comment = comments(c);
  return {
    output: {
      comment: comment.output,
      expr: [match('==', payload('udp', 'sport'), c.probePort), { notrack: null }, { mangle: { key: payload('udp', 'sport'), value: c.wgPort } }],
    },
    prerouting: {
      comment: comment.prerouting,
      expr: [
        match('==', payload('udp', 'dport'), c.wgPort),
        match('==', raw(96, 32), MAGIC_COOKIE),
        match('==', { '&': [raw(64, 8), 0xc0] }, 0),
        match('!=', raw(72, 24), 0),
        match('==', { fib: { result: 'type', flags: ['daddr'] } }, 'local'),
        { notrack: null },
        { mangle: { key: payload('udp', 'dport'), value: c.probePort } },
      ],
    },
  };
}

/**
 * Pure: whether `nft -j list table inet T` (undefined: no table) shows exactly the
 * rewrite for `o`: the two chains at raw priority and one rule each, equal expression by
 * expression. Counters and handles are ignored; anything else differing (other ports,
 * an extra rule, an edited match) means the table is rewritten.
 */
export function portShareInSync(o: PortShare, listed: unknown): boolean {
  if (listed === undefined) return false;
  const want = expectedPortShareRules(o);
  const { chains, rules } = listedObjects(listed);
  const hooks = { output: 'output', prerouting: 'prerouting' } as const;
  if (chains.length !== 2 || rules.length !== 2) return false;
  for (const name of ['output', 'prerouting'] as const) {
    const chain = chains.find((ch) => ch.name === name);
    if (!chain || chain.type !== 'filter' || chain.hook !== hooks[name] || chain.prio !== -300 || chain.policy !== 'accept') return false;
    const rule = rules.find((r) => r.chain === name);
    if (!rule || rule.comment !== want[name].comment) return false;
    const expr = (rule.expr ?? []).filter((e) => !(typeof e === 'object' && e !== null && 'counter' in e));
    if (!isDeepStrictEqual(expr, want[name].expr)) return false;
  }
  return true;
}

export interface PortShareCounters {
  /** Datagrams that left PROBEPORT as WGPORT. */
  sent: number;
  /** STUN datagrams to WGPORT handed to PROBEPORT. */
  diverted: number;
}

/** Pure: the two rules' packet counters from `nft -j list table`. */
export function portShareCounters(listed: unknown): PortShareCounters {
  const packets = (chain: string): number => {
    const rule = listedObjects(listed).rules.find((r) => r.chain === chain);
    const counter = (rule?.expr ?? []).find((e): e is { counter: { packets: number } } => typeof e === 'object' && e !== null && 'counter' in e);
    return counter?.counter.packets ?? 0;
  };
  return { sent: packets('output'), diverted: packets('prerouting') };
}

export type PortShareAction = 'created' | 'replaced' | 'unchanged';

/** Idempotent: reads the table (about 3 ms) and rewrites it only when it differs, so a reconcile loop may call it every pass. */
export async function enablePortShare(runner: Runner, o: PortShare): Promise<PortShareAction> {
  const script = portShareScript(o); // validates before anything is read or written
  const listed = await nftJsonIfExists(runner, ['list', 'table', 'inet', check(o).table]);
  if (portShareInSync(o, listed)) return 'unchanged';
  await nftApply(runner, script);
  return listed === undefined ? 'created' : 'replaced';
}

/** Idempotent: a table already gone counts as removed. */
export async function disablePortShare(runner: Runner, table: string = PORT_SHARE_TABLE): Promise<'removed' | 'absent'> {
  const script = portShareRemovalScript(table);
  if ((await nftJsonIfExists(runner, ['list', 'table', 'inet', table])) === undefined) return 'absent';
  await nftApply(runner, script);
  return 'removed';
}

/** The counters, or undefined when the table is absent (for metrics and tests). */
export async function readPortShareCounters(runner: Runner, table: string = PORT_SHARE_TABLE): Promise<PortShareCounters | undefined> {
  const listed = await nftJsonIfExists(runner, ['list', 'table', 'inet', table]);
  return listed === undefined ? undefined : portShareCounters(listed);
}
