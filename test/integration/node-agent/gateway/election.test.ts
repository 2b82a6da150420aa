// The gateway election against a real etcd (test/helpers/etcd.ts), each node with its own
// store (its own etcd connection, as separate nodes would have): three candidates and a
// member elect exactly one active and agree on it; a graceful stop hands over within a
// second; a killed active is replaced once its lease runs out; an active cut off from etcd
// (etcd paused, or only the active's own link silent) steps down before its lease can
// expire, and after the outage exactly one node is active. Across every test, no two
// nodes are ever active at the same moment. Failover times are printed.
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../../../lib/etcd/store.js';
import { GatewayElection, GATEWAY_TTL_SECONDS, gatewayKey, STEP_DOWN_MARGIN_MS, type Verdict } from '../../../../node-agent/gateway/election.js';
import { systemTimers, type TimerHandle, type Timers } from '../../../../node-agent/nat/timers.js';
import { EtcdServer } from '../../../helpers/etcd.js';
import { waitFor } from '../../../helpers/sh.js';

const TTL_MS = GATEWAY_TTL_SECONDS * 1000;
const KEY = gatewayKey('/warren');

/** The system's timers until freeze(); after it no callback ever runs, as in a process that died. */
class FreezableTimers implements Timers {
  private frozen = false;
  now(): number {
    return systemTimers.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return systemTimers.setTimeout(() => {
      if (!this.frozen) fn();
    }, ms);
  }
  clearTimeout(handle: TimerHandle): void {
    systemTimers.clearTimeout(handle);
  }
  freeze(): void {
    this.frozen = true;
  }
}

/** A TCP relay between one node and etcd. cut() silences it both ways (bytes wait, as in a partition TCP rides out); heal() lets them through. */
class Link {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private silent = false;

  private constructor(private readonly server: Server, readonly port: number) {}

  static async open(targetPort: number): Promise<Link> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const link = new Link(server, (server.address() as AddressInfo).port);
    server.on('connection', (client) => link.accept(client, targetPort));
    return link;
  }

  cut(): void {
    this.silent = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  heal(): void {
    this.silent = false;
    for (const pair of this.pairs) this.join(pair);
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (this.silent) {
      client.pause();
      upstream.pause();
    } else {
      this.join(pair);
    }
  }

  // pipe() resumes a paused source.
  private join({ client, upstream }: { client: Socket; upstream: Socket }): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

interface Report extends Verdict {
  /** performance.now(), the election's own clock. */
  at: number;
}

interface TestNode {
  name: string;
  election: GatewayElection;
  store: EtcdStore;
  timers: FreezableTimers;
  link: Link | undefined;
  reports: Report[];
  errors: unknown[];
  /** When it was killed or stopped: it no longer counts. */
  goneAt: number | undefined;
  killed: boolean;
}

class Gateways {
  readonly nodes: TestNode[] = [];

  constructor(private readonly etcd: EtcdServer) {}

  async start(name: string, candidate: boolean, { viaLink = false } = {}): Promise<TestNode> {
    const link = viaLink ? await Link.open(this.etcd.clientPort) : undefined;
    const store = new EtcdStore({ endpoints: link ? `http://127.0.0.1:${link.port}` : this.etcd.endpoint, timeoutMs: 10_000 });
    const timers = new FreezableTimers();
    const node: TestNode = { name, store, timers, link, reports: [], errors: [], goneAt: undefined, killed: false, election: undefined as unknown as GatewayElection };
    node.election = new GatewayElection({
      store, prefix: '/warren', node: name, candidate, timers,
      onChange: (active, iAmActive) => node.reports.push({ at: performance.now(), active, iAmActive }),
      onError: (err) => node.errors.push(err),
    });
    node.election.start();
    this.nodes.push(node);
    return node;
  }

  /** Three candidates and a member, as named in the agent config. */
  async startFour(options: { viaLink?: boolean } = {}): Promise<TestNode[]> {
    return Promise.all([['gw-a', true], ['gw-b', true], ['gw-c', true], ['member-d', false]] as const)
      .then((specs) => Promise.all(specs.map(([name, candidate]) => this.start(name, candidate, options))));
  }

  live(): TestNode[] {
    return this.nodes.filter((n) => n.goneAt === undefined);
  }

  async stop(node: TestNode): Promise<void> {
    await node.election.stop();
    node.goneAt = performance.now();
  }

  /** The process dies: no more timers, its connection gone, its lease neither renewed nor revoked. */
  kill(node: TestNode): void {
    node.timers.freeze();
    node.store.close();
    node.killed = true;
    node.goneAt = performance.now();
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) n.link?.heal();
    await Promise.all(this.live().map((n) => n.election.stop()));
    for (const n of this.nodes) {
      if (!n.killed) n.store.close();
    }
    await Promise.all(this.nodes.map((n) => n.link?.close()));
  }
}

/** The node every one of `nodes` names as active, when exactly one of them says it is that node. */
function agreedActive(nodes: TestNode[]): TestNode | undefined {
  const verdicts = nodes.map((n) => n.election.status());
  const named = new Set(verdicts.map((v) => v.active));
  const actives = nodes.filter((_, i) => verdicts[i]!.iAmActive);
  if (named.size !== 1 || actives.length !== 1) return undefined;
  return actives[0]!.election.status().active === actives[0]!.name ? actives[0] : undefined;
}

async function agreement(what: string, nodes: () => TestNode[], timeoutMs = 5_000): Promise<TestNode> {
  let found: TestNode | undefined;
  await waitFor(what, () => (found = agreedActive(nodes())) !== undefined, timeoutMs, 5);
  return found!;
}

/** The first report of `node` at or after `since` that says it is active. */
function becameActiveAt(node: TestNode, since: number): number {
  const r = node.reports.find((x) => x.iAmActive && x.at >= since);
  if (!r) throw new Error(`${node.name} never became active after ${since}`);
  return r.at;
}

/** The longest time two nodes were active at once, from their reports (a gone node's last state ends when it went). */
function longestOverlapMs(nodes: TestNode[]): number {
  const end = performance.now();
  const spans = nodes.flatMap((n) => n.reports.flatMap((r, i) => {
    if (!r.iAmActive) return [];
    const until = Math.min(n.reports[i + 1]?.at ?? end, n.goneAt ?? end);
    return [{ node: n.name, from: r.at, until }];
  }));
  let worst = 0;
  for (const a of spans) {
    for (const b of spans) {
      if (a.node < b.node) worst = Math.max(worst, Math.min(a.until, b.until) - Math.max(a.from, b.from));
    }
  }
  return worst;
}

/** The gateway key as etcd holds it: the value and the lease's id (read as text: it does not fit a double). */
async function keyInEtcd(etcd: EtcdServer): Promise<{ value: string; lease: bigint } | undefined> {
  const out = await etcd.etcdctl(['get', KEY, '-w', 'json']);
  const value = /"value":"([^"]*)"/.exec(out)?.[1];
  const lease = /"lease":(\d+)/.exec(out)?.[1];
  return value === undefined ? undefined : { value: Buffer.from(value, 'base64').toString('utf8'), lease: BigInt(lease ?? 0) };
}

/** The etcd process serving `etcd`'s data directory, to pause it (the helper keeps its child to itself). */
function etcdPid(etcd: EtcdServer): number {
  const marker = `--data-dir\0${join(etcd.dir, 'data')}\0`;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) return Number(entry);
    } catch {
      // Gone while we looked.
    }
  }
  throw new Error(`no etcd process serves ${etcd.dir}`);
}

/** Waits until `node` has sent `count` more renewals that etcd answered: the election has had time to change its mind. */
async function renewals(node: TestNode, count: number): Promise<void> {
  const from = node.election.status().renewedAt!;
  await waitFor(`${count} renewals by ${node.name}`, () => (node.election.status().renewedAt ?? 0) >= from + count * 1_000 - 100, (count + 3) * 1_000);
}

const ms = (x: number) => `${Math.round(x)} ms`;

let etcd: EtcdServer;
let gw: Gateways;
let pausedPid: number | undefined;

beforeEach(async () => {
  etcd = await EtcdServer.start();
  gw = new Gateways(etcd);
});
afterEach(async () => {
  if (pausedPid !== undefined) process.kill(pausedPid, 'SIGCONT');
  pausedPid = undefined;
  await gw.destroy();
  await etcd.destroy();
});

describe('gateway election', () => {
  it('three candidates and a member elect exactly one active, agree on it, and stay with it', async () => {
    const started = performance.now();
    const nodes = await gw.startFour();
    const active = await agreement('one active that all four name', () => nodes);
    console.log(`election: ${active.name} active ${ms(becameActiveAt(active, started) - started)} after start, all four agree after ${ms(performance.now() - started)}`);
    expect(becameActiveAt(active, started) - started).toBeLessThan(1_000);
    expect(active.name).not.toBe('member-d');

    expect(await keyInEtcd(etcd)).toEqual({ value: active.name, lease: BigInt(active.election.status().leaseId!) });
    const counts = nodes.map((n) => n.reports.length);
    await renewals(active, 3);
    expect(nodes.map((n) => n.reports.length)).toEqual(counts);
    expect(nodes.filter((n) => n !== active).flatMap((n) => n.reports).some((r) => r.iAmActive)).toBe(false);
    expect(nodes.find((n) => n.name === 'member-d')!.election.status().leaseId).toBeUndefined();
    expect(nodes.flatMap((n) => n.errors)).toEqual([]);
  });

  it('etcd unreachable at start: every node keeps trying, and once etcd is up exactly one is active', async () => {
    await etcd.stop();
    const nodes = await gw.startFour();
    await waitFor('every node to have tried etcd three times', () => nodes.every((n) => n.store.roundTrips >= 3), 20_000);
    expect(nodes.every((n) => n.reports.length === 0)).toBe(true);
    const resumedAt = performance.now();
    await etcd.resume();
    const upAt = performance.now();
    const active = await agreement('one active that all four name once etcd is up', () => nodes, 15_000);
    // resume() returns once etcdctl's health check passes, which can be after the election.
    console.log(`etcd restarted (healthy after ${ms(upAt - resumedAt)}): ${active.name} active ${ms(becameActiveAt(active, resumedAt) - resumedAt)} `
      + `and all four agree ${ms(performance.now() - resumedAt)} after the restart began`);
    expect(becameActiveAt(active, resumedAt) - upAt).toBeLessThan(2_000);
    await renewals(active, 2);
    expect(agreedActive(nodes)).toBe(active);
    expect(nodes.flatMap((n) => n.errors)).toEqual([]);
  });

  it('an active that stops resigns: another is active within a second, and never while the old one was', async () => {
    await gw.startFour();
    const old = await agreement('a first active', () => gw.live());
    const stoppedAt = performance.now();
    await gw.stop(old);
    const next = await agreement('a new active that the other three name', () => gw.live(), 2_000);
    const takeover = becameActiveAt(next, stoppedAt) - stoppedAt;
    console.log(`graceful stop of ${old.name}: ${next.name} active after ${ms(takeover)}, all three agree after ${ms(performance.now() - stoppedAt)}`);
    expect(next).not.toBe(old);
    expect(takeover).toBeLessThan(1_000);
    expect(old.reports.at(-1)).toMatchObject({ active: undefined, iAmActive: false });
    expect(longestOverlapMs(gw.nodes)).toBe(0);
    expect((await keyInEtcd(etcd))?.value).toBe(next.name);
  });

  it('a killed active is replaced once its lease runs out; back again, it follows the new one', async () => {
    await gw.startFour();
    const old = await agreement('a first active', () => gw.live());
    const killedAt = performance.now();
    gw.kill(old);
    const next = await agreement('a new active that the other three name', () => gw.live(), TTL_MS + 5_000);
    const takeover = becameActiveAt(next, killedAt) - killedAt;
    console.log(`${old.name} killed: ${next.name} active after ${ms(takeover)} (TTL ${ms(TTL_MS)})`);
    // Not before the lease, renewed at most a second before the kill, could have expired...
    expect(takeover).toBeGreaterThan(TTL_MS - 1_500);
    // ...and soon after.
    expect(takeover).toBeLessThan(TTL_MS + 2_000);

    const back = await gw.start(old.name, true);
    await agreement(`${old.name}, back, to follow ${next.name}`, () => gw.live());
    await renewals(next, 2);
    expect(agreedActive(gw.live())).toBe(next);
    expect(back.reports).toEqual([expect.objectContaining({ active: next.name, iAmActive: false })]);
    expect(longestOverlapMs(gw.nodes)).toBe(0);
  });

  it('with etcd paused, the active steps down before its lease can expire; after etcd returns exactly one is active', async () => {
    await gw.startFour();
    const old = await agreement('a first active', () => gw.live());
    await renewals(old, 1);
    const pid = etcdPid(etcd);
    const pausedAt = performance.now();
    process.kill(pid, 'SIGSTOP');
    pausedPid = pid;
    await waitFor(`${old.name} to step down`, () => !old.election.status().iAmActive, TTL_MS + 2_000, 5);
    const stepDown = old.reports.at(-1)!;
    // Sent before etcd answered it: etcd's expiry is at least a TTL after this.
    const lastRenewal = old.election.status().renewedAt!;
    console.log(`etcd paused: ${old.name} stepped down ${ms(stepDown.at - lastRenewal)} after its last renewal `
      + `(${ms(stepDown.at - pausedAt)} after the pause; lease expires ${ms(TTL_MS)} after the renewal at the earliest)`);
    expect(stepDown).toMatchObject({ active: undefined, iAmActive: false });
    expect(stepDown.at - lastRenewal).toBeGreaterThanOrEqual(TTL_MS - STEP_DOWN_MARGIN_MS - 1);
    expect(stepDown.at - lastRenewal).toBeLessThan(TTL_MS - STEP_DOWN_MARGIN_MS + 500);
    expect(stepDown.at - pausedAt).toBeLessThan(TTL_MS);
    expect(gw.live().filter((n) => n.election.status().iAmActive)).toEqual([]);

    // The outage's length is the scenario: longer than the TTL, so etcd finds every lease expired when it runs again.
    await delay(Math.max(0, pausedAt + TTL_MS + 2_000 - performance.now()));
    process.kill(pid, 'SIGCONT');
    pausedPid = undefined;
    const resumedAt = performance.now();
    const next = await agreement('exactly one active that all four name after etcd returns', () => gw.live(), 15_000);
    console.log(`etcd resumed after ${ms(resumedAt - pausedAt)}: ${next.name} active ${ms(becameActiveAt(next, resumedAt) - resumedAt)} later, all four agree after ${ms(performance.now() - resumedAt)}`);
    await renewals(next, 2);
    expect(agreedActive(gw.live())).toBe(next);
    expect((await keyInEtcd(etcd))?.value).toBe(next.name);
    expect(longestOverlapMs(gw.nodes)).toBe(0);
  });

  it('an active whose own link to etcd goes silent steps down before a standby takes over, then follows it', async () => {
    await gw.startFour({ viaLink: true });
    const old = await agreement('a first active', () => gw.live());
    await renewals(old, 1);
    const others = () => gw.live().filter((n) => n !== old);
    const cutAt = performance.now();
    old.link!.cut();
    const next = await agreement('a new active that the other three name', others, TTL_MS + 5_000);
    const stepDown = old.reports.find((r) => r.at >= cutAt)!;
    const lastRenewal = old.election.status().renewedAt!;
    const takeoverAt = becameActiveAt(next, cutAt);
    console.log(`${old.name} cut off: stepped down ${ms(stepDown.at - lastRenewal)} after its last renewal (${ms(stepDown.at - cutAt)} after the cut); `
      + `${next.name} active ${ms(takeoverAt - cutAt)} after the cut, ${ms(takeoverAt - stepDown.at)} after the step-down`);
    expect(stepDown).toMatchObject({ active: undefined, iAmActive: false });
    expect(stepDown.at - lastRenewal).toBeLessThan(TTL_MS);
    expect(takeoverAt).toBeGreaterThan(stepDown.at);
    expect(takeoverAt - cutAt).toBeLessThan(TTL_MS + 2_000);

    const healedAt = performance.now();
    old.link!.heal();
    await agreement(`${old.name} to follow ${next.name} once its link is back`, () => gw.live(), 15_000);
    console.log(`link back: ${old.name} follows ${next.name} after ${ms(performance.now() - healedAt)}`);
    await renewals(next, 2);
    expect(agreedActive(gw.live())).toBe(next);
    expect(old.reports.filter((r) => r.at >= cutAt).some((r) => r.iAmActive)).toBe(false);
    expect(longestOverlapMs(gw.nodes)).toBe(0);
  });
});
