// The NAT lab: an emulated internet of network namespaces with real nftables NAT routers
// and a real coturn, for testing NAT traversal with real packets.
//
//   site hosts --- NAT router(s) ---+                      +--- turn (coturn on 192.0.2.10
//   (10.k.0.2)     (wan 198.51.100.4k+2/30)               |     and .11: UDP and TCP 3478 and
//                                   |                      |     3479, TLS 443; a 443 front
//                                   |                      |     door on .12 for a service)
//                                   +---- internet -------+
//   public host (198.51.100.4k+2/30) -+   (a router: one routed hop between any two sites)
//
// Every site has its own point-to-point link to the internet router, so a packet between
// two sites is routed (TTL decremented) at least once outside both: what lets a small-TTL
// probe open its own NAT's mapping and die before reaching the far NAT (TESTBED.md).
// Node code runs inside a namespace through NsWorker: a child node process entered with
// nsenter, whose exported functions are called over IPC.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../../node-agent/nat/stun-address.js';
import { Netns } from './netns.js';
import { run, waitFor } from './sh.js';
import { perTest } from './per-test.js';
import { createCa, issueCertificate, type Credential } from './pki.js';

/**
 * The six kinds of site: 1 public address; 2 full cone (masquerade plus every inbound UDP
 * DNATed to the host); 3 home router (masquerade, unsolicited WAN input and forward
 * dropped); 4 bare Linux masquerade (input accepted: the conntrack trap); 5 symmetric
 * (masquerade fully-random, unsolicited dropped); 6 double NAT (a carrier NAT on
 * 100.64.0.0/10, dropping unsolicited, in front of a home router).
 */
export type SiteKind = 'public' | 'full-cone' | 'home-router' | 'masquerade' | 'symmetric' | 'double-nat';

export interface Site {
  kind: SiteKind;
  index: number;
  host: Netns;
  /** The host's own address (its public one for 'public'). */
  hostAddress: string;
  /** The address the internet sees: the outermost router's WAN address. */
  publicAddress: string;
  /** NAT routers from the host outwards (home router first, carrier NAT last). */
  routers: Netns[];
  /** A datagram sent with this TTL leaves every router of the site and dies at the internet router. */
  ttlDyingInInternet: number;
  /** Every host of the site's LAN, `host` first (SiteOptions.hosts). */
  lan: { host: Netns; address: string }[];
}

export interface SiteOptions {
  /**
   * Hosts on the site's LAN (10.k.0.2, .3, ...; default 1). With more than one, the LAN is
   * a switch (a bridge in a namespace of its own, `s<k>l`) between the router and the
   * hosts, so traffic between two hosts never enters the router. Not for 'public'.
   */
  hosts?: number;
  /**
   * The home router hairpins (NAT loopback): a host's packet to the router's public address
   * and a port another host is mapped to reaches that host, its source masqueraded to the
   * router's LAN address, as routers with "NAT loopback" do. Without it (the default) such
   * a packet ends at the router (nothing listens: port unreachable). Not for 'public' or
   * 'double-nat' (the carrier NAT would have to hairpin too).
   */
  hairpin?: boolean;
  /**
   * What the site's outermost router lets out: 'tcp443' drops every outbound UDP packet and
   * every TCP connection but to port 443, as corporate and hotel networks do; 'no-udp'
   * drops UDP only. openEgress lifts it. Not for 'public'.
   */
  egress?: 'tcp443' | 'no-udp';
}

/** coturn's TLS listener, and what a client needs to trust it. */
export interface TurnTls {
  server: Endpoint;
  /** The certificate's DNS name (it also carries both TURN addresses as IP SANs). */
  serverName: string;
  caFile: string;
}

export interface TurnAccount {
  server: Endpoint;
  username: string;
  password: string;
  realm: string;
}

const INTERNET_ON_TURN = '192.0.2.1';
const TURN_ADDRESSES = ['192.0.2.10', '192.0.2.11'] as const;
const STUN_PORT = 3478;
// coturn's RFC 5780 alternate port: listening port plus one.
const STUN_ALT_PORT = 3479;
const TURN_TLS_PORT = 443;
const TURN_NAME = 'turn.natlab';
/** Where frontDoor443 publishes a service of the turn namespace on port 443. */
const FRONT_DOOR = '192.0.2.12';
const MAX_SITES = 63; // 198.51.100.0/24 in /30s

function wanAddresses(index: number): { internet: string; site: string } {
  return { internet: `198.51.100.${4 * index + 1}`, site: `198.51.100.${4 * index + 2}` };
}

// Filtering of unsolicited packets from the WAN, shared by the kinds that have it; the
// counters let a test wait until a dropped packet has really arrived.
const DROP_UNSOLICITED = `
  chain input { type filter hook input priority filter; policy accept; iifname "wan" ct state != { established, related } counter drop; }
  chain forward { type filter hook forward priority filter; policy accept; iifname "wan" ct state != { established, related } counter drop; }`;

/**
 * Pure: the nftables rules of a hairpinning router. Every UDP mapping the router makes
 * toward the WAN is learned (public port -> inside address and port, in a map that
 * forgets after conntrack's UDP stream timeout) by a chain after the masquerade; a LAN
 * packet to the router's public address and a learned port is DNATed to that host and
 * masqueraded back to the router's LAN address, so the reply comes back through it.
 */
export function hairpinRules(o: { lan: string; publicAddress: string }): { prerouting: string; postrouting: string; chains: string } {
  return {
    prerouting: `iifname "lan" ip daddr ${o.publicAddress} meta l4proto udp dnat ip to udp dport map @hairpin;`,
    postrouting: `oifname "lan" ct status dnat ip saddr ${o.lan} masquerade;`,
    chains: `map hairpin { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout 180s; }
  chain hairpin_learn { type filter hook postrouting priority srcnat + 10; policy accept; oifname "wan" meta l4proto udp ct direction original update @hairpin { ct reply proto-dst : ct original ip saddr . ct original proto-src }; }`,
  };
}

/** Pure: the nftables ruleset of one NAT router. `inside` is the one host a full cone forwards to; `hairpin` adds NAT loopback (hairpinRules). */
export function natRuleset(kind: 'full-cone' | 'home-router' | 'masquerade' | 'symmetric' | 'carrier', inside: string, hairpin?: { lan: string; publicAddress: string }): string {
  const masquerade = kind === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  const loop = hairpin && hairpinRules(hairpin);
  const postrouting = `chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "wan" ${masquerade}; ${loop?.postrouting ?? ''} }`;
  const extra = {
    'full-cone': `chain prerouting { type nat hook prerouting priority dstnat; policy accept; iifname "wan" meta l4proto udp dnat to ${inside}; }`,
    'home-router': DROP_UNSOLICITED,
    masquerade: '',
    symmetric: DROP_UNSOLICITED,
    carrier: DROP_UNSOLICITED,
  }[kind];
  if (!loop) return `table ip natlab {\n  ${postrouting}\n  ${extra}\n}\n`;
  // A full cone has a prerouting chain of its own: the hairpin rule goes first in it.
  const prerouting = kind === 'full-cone' ? extra.replace('policy accept; ', `policy accept; ${loop.prerouting} `)
    : `chain prerouting { type nat hook prerouting priority dstnat; policy accept; ${loop.prerouting} }\n  ${extra}`;
  return `table ip natlab {\n  ${postrouting}\n  ${prerouting}\n  ${loop.chains}\n}\n`;
}

export class NatLab {
  private readonly namespaces: Netns[] = [];
  private readonly workers = new Set<NsWorker>();
  private turnProcess: ChildProcess | undefined;
  private turnExited: Promise<void> = Promise.resolve();
  private sites = 0;
  readonly dir = mkdtempSync(join(tmpdir(), 'warren-natlab-'));
  internet!: Netns;
  turnNs!: Netns;
  readonly turn: TurnAccount = { server: { address: TURN_ADDRESSES[0], port: STUN_PORT }, username: 'warren', password: 'natlab-secret', realm: 'natlab' };
  /** RFC 5780 tests I, II, III: primary, other address, other address and port. */
  readonly stunServers: readonly Endpoint[] = [
    { address: TURN_ADDRESSES[0], port: STUN_PORT },
    { address: TURN_ADDRESSES[1], port: STUN_PORT },
    { address: TURN_ADDRESSES[1], port: STUN_ALT_PORT },
  ];

  readonly turnTls: TurnTls = { server: { address: TURN_ADDRESSES[0], port: TURN_TLS_PORT }, serverName: TURN_NAME, caFile: join(this.dir, 'turn-ca.crt') };
  private turnCert!: Credential;
  private turnSecret: string | undefined;
  private constructor() {}

  /** The internet router and coturn; destroys whatever it built if any step fails. */
  static async create(): Promise<NatLab> {
    const lab = new NatLab();
    try {
      lab.internet = await lab.netns('inet');
      await forwarding(lab.internet);
      lab.turnNs = await lab.netns('turn');
      await link(lab.internet, 't0', lab.turnNs, 'eth0');
      await run('ip', ['-n', lab.internet.name, 'addr', 'add', `${INTERNET_ON_TURN}/24`, 'dev', 't0']);
      for (const a of TURN_ADDRESSES) await run('ip', ['-n', lab.turnNs.name, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', lab.turnNs.name, 'route', 'add', 'default', 'via', INTERNET_ON_TURN]);
      await createCa(lab.dir, 'turn-ca');
      lab.turnCert = await issueCertificate(lab.dir, 'turn', 'turn-ca',
        `subjectAltName=${[...TURN_ADDRESSES.map((a) => `IP:${a}`), `DNS:${TURN_NAME}`].join(',')}\nextendedKeyUsage=serverAuth`);
      await lab.startCoturn();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  async addSite(kind: SiteKind, options: SiteOptions = {}): Promise<Site> {
    const hosts = options.hosts ?? 1;
    if (!Number.isInteger(hosts) || hosts < 1 || hosts > 200) throw new Error(`hosts must be 1 to 200, not ${hosts}`);
    if (kind === 'public' && (hosts > 1 || options.hairpin)) throw new Error('a public site is one host on the internet: no LAN, no router to hairpin');
    if (kind === 'double-nat' && options.hairpin) throw new Error('hairpin is not modelled behind a carrier NAT');
    if (kind === 'public' && options.egress) throw new Error('a public site has no router to filter its egress');
    const index = ++this.sites;
    if (index > MAX_SITES) throw new Error(`the lab holds at most ${MAX_SITES} sites`);
    const wan = wanAddresses(index);
    const edge = await this.netns(kind === 'public' ? `s${index}h` : `s${index}${kind === 'double-nat' ? 'c' : 'r'}`);
    await link(this.internet, `s${index}`, edge, kind === 'public' ? 'eth0' : 'wan');
    await run('ip', ['-n', this.internet.name, 'addr', 'add', `${wan.internet}/30`, 'dev', `s${index}`]);
    await run('ip', ['-n', edge.name, 'addr', 'add', `${wan.site}/30`, 'dev', kind === 'public' ? 'eth0' : 'wan']);
    await run('ip', ['-n', edge.name, 'route', 'add', 'default', 'via', wan.internet]);
    if (kind === 'public') return { kind, index, host: edge, hostAddress: wan.site, publicAddress: wan.site, routers: [], ttlDyingInInternet: 1, lan: [{ host: edge, address: wan.site }] };

    const routers = [edge];
    let home = edge;
    if (kind === 'double-nat') {
      home = await this.netns(`s${index}r`);
      routers.unshift(home);
      await link(edge, 'cpe', home, 'wan');
      await run('ip', ['-n', edge.name, 'addr', 'add', `100.64.${index}.1/24`, 'dev', 'cpe']);
      await run('ip', ['-n', home.name, 'addr', 'add', `100.64.${index}.2/24`, 'dev', 'wan']);
      await run('ip', ['-n', home.name, 'route', 'add', 'default', 'via', `100.64.${index}.1`]);
      await applyRuleset(edge, natRuleset('carrier', ''));
      await forwarding(edge);
    }
    const lan: Site['lan'] = [];
    // One host: straight on the router. More: a switch between them (SiteOptions.hosts).
    const sw = hosts > 1 ? await this.netns(`s${index}l`) : undefined;
    if (sw) {
      await sw.runner('ip', ['link', 'add', 'name', 'br0', 'type', 'bridge']);
      await sw.runner('ip', ['link', 'set', 'br0', 'up']);
      await link(home, 'lan', sw, 'r');
      await sw.runner('ip', ['link', 'set', 'r', 'master', 'br0']);
    }
    for (let i = 0; i < hosts; i++) {
      const host = await this.netns(`s${index}h${i ? String(i) : ''}`);
      const address = `10.${index}.0.${2 + i}`;
      if (sw) {
        await link(sw, `h${i}`, host, 'eth0');
        await sw.runner('ip', ['link', 'set', `h${i}`, 'master', 'br0']);
      } else {
        await link(home, 'lan', host, 'eth0');
      }
      await run('ip', ['-n', host.name, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', host.name, 'route', 'add', 'default', 'via', `10.${index}.0.1`]);
      lan.push({ host, address });
    }
    await run('ip', ['-n', home.name, 'addr', 'add', `10.${index}.0.1/24`, 'dev', 'lan']);
    const hostAddress = lan[0]!.address;
    const hairpin = options.hairpin ? { lan: `10.${index}.0.0/24`, publicAddress: wan.site } : undefined;
    await applyRuleset(home, natRuleset(kind === 'double-nat' ? 'home-router' : kind, hostAddress, hairpin));
    // Counts what the LAN sends to the router's public address (hairpinned or not): its
    // own table, so droppedUnsolicited's sum over table natlab stays what it was.
    if (hosts > 1) await applyRuleset(home, `table ip natlab_lan {\n  chain count { type filter hook prerouting priority mangle; policy accept; iifname "lan" ip daddr ${wan.site} counter; }\n}\n`);
    await forwarding(home);
    if (options.egress) await applyRuleset(edge, egressRuleset(options.egress));
    return { kind, index, host: lan[0]!.host, hostAddress, publicAddress: wan.site, routers, ttlDyingInInternet: routers.length + 1, lan };
  }

  /** Starts `modulePath` (absolute, .ts) in `ns`; stopped by destroy() at the latest. */
  async startWorker(ns: WorkerNs, modulePath: string): Promise<NsWorker> {
    const worker = await NsWorker.start(ns, modulePath);
    this.workers.add(worker);
    return worker;
  }

  get coturnLog(): string {
    try {
      return readFileSync(join(this.dir, 'turnserver.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Publishes `target` (a TCP service in the turn namespace, e.g. etcd) on 192.0.2.12:443,
   * as a site that reaches the internet on TCP 443 only needs its services there.
   */
  async frontDoor443(target: Endpoint): Promise<string> {
    await run('ip', ['-n', this.turnNs.name, 'addr', 'add', `${FRONT_DOOR}/24`, 'dev', 'eth0']);
    await applyRuleset(this.turnNs, `table ip natlab_front {\n  chain prerouting { type nat hook prerouting priority dstnat; policy accept; ip daddr ${FRONT_DOOR} tcp dport 443 dnat to ${target.address}:${target.port}; }\n}\n`);
    return `${FRONT_DOOR}:443`;
  }

  /** Stops coturn (STUN and TURN go silent) until restartCoturn(). */
  async stopCoturn(): Promise<void> {
    if (!this.turnProcess) return;
    await stopChild(this.turnProcess, this.turnExited);
    this.turnProcess = undefined;
  }

  /**
   * coturn's REST API from now on (use-auth-secret): only credentials derived from `secret`
   * (lib/turn-credential.ts) and not yet expired are taken; the static user no longer is.
   * Restarts coturn.
   */
  async useTurnSecret(secret: string): Promise<void> {
    this.turnSecret = secret;
    await this.restartCoturn();
  }

  /** Stops coturn if it runs and starts it again: every allocation, permission and channel is gone. */
  async restartCoturn(): Promise<void> {
    await this.stopCoturn();
    await this.startCoturn();
  }

  /** Stops workers and coturn, then deletes every namespace: safe after a partial create. */
  async destroy(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    this.workers.clear();
    if (this.turnProcess) {
      await stopChild(this.turnProcess, this.turnExited);
      this.turnProcess = undefined;
    }
    for (const ns of this.namespaces.splice(0).reverse()) await ns.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A second way out for a NAT site's host (moving nodes): a router of the same kind in a
   * namespace of its own (`s<k>u`, WAN 198.18.k.2/30 on the internet router, LAN
   * 10.(100+k).0.0/24) and a second link on the host (`eth1`, 10.(100+k).0.2), whose
   * default route stays where it was until moveDefaultRoute(). Its public address differs
   * from the site's.
   */
  async addUplink(site: Site): Promise<Uplink> {
    if (site.kind === 'public' || site.kind === 'double-nat') throw new Error(`a second uplink is modelled for single-NAT sites, not ${site.kind}`);
    const k = site.index;
    const router = await this.netns(`s${k}u`);
    const wan = { internet: `198.18.${k}.1`, site: `198.18.${k}.2` };
    await link(this.internet, `u${k}`, router, 'wan');
    await run('ip', ['-n', this.internet.name, 'addr', 'add', `${wan.internet}/30`, 'dev', `u${k}`]);
    await run('ip', ['-n', router.name, 'addr', 'add', `${wan.site}/30`, 'dev', 'wan']);
    await run('ip', ['-n', router.name, 'route', 'add', 'default', 'via', wan.internet]);
    const hostAddress = `10.${100 + k}.0.2`;
    await link(router, 'lan', site.host, 'eth1');
    await run('ip', ['-n', router.name, 'addr', 'add', `10.${100 + k}.0.1/24`, 'dev', 'lan']);
    await run('ip', ['-n', site.host.name, 'addr', 'add', `${hostAddress}/24`, 'dev', 'eth1']);
    await applyRuleset(router, natRuleset(site.kind, hostAddress));
    await forwarding(router);
    return { router, dev: 'eth1', gateway: `10.${100 + k}.0.1`, hostAddress, publicAddress: wan.site };
  }

  private async netns(prefix: string): Promise<Netns> {
    const ns = await Netns.create(prefix);
    this.namespaces.push(ns);
    return ns;
  }

  // Flags beyond the usual: -n no config file; its own pid file and user db (as root coturn
  // would use /var/run/turnserver.pid and /var/lib/turn/turndb, shared by parallel labs); TLS
  // on 443 with the lab's certificate, no DTLS (nothing uses it); --verbose logs every request with its result, which is what a
  // failing test needs; the RFC 5780 alternate port (3479) stays on for the mapping probe.
  // Started with -n, coturn 4.6.1 denies no peer range but loopback, so relaying to the lab's
  // documentation-range addresses needs no --allowed-peer-ip (the TURN test proves it).
  private async startCoturn(): Promise<void> {
    const log = openSync(join(this.dir, 'turnserver.log'), 'a');
    const args = [
      '-n', ...TURN_ADDRESSES.flatMap((a) => ['--listening-ip', a]), '--listening-port', String(STUN_PORT),
      '--lt-cred-mech', ...(this.turnSecret ? ['--use-auth-secret', `--static-auth-secret=${this.turnSecret}`] : ['--user', `${this.turn.username}:${this.turn.password}`]),
      '--realm', this.turn.realm,
      '--no-cli', '--no-dtls', '--cert', this.turnCert.cert, '--pkey', this.turnCert.key, '--tls-listening-port', String(TURN_TLS_PORT),
      '--log-file=stdout', '--simple-log', '--verbose',
      '--pidfile', join(this.dir, 'turnserver.pid'), '--userdb', join(this.dir, 'turndb'),
    ];
    const child = spawn('nsenter', [`--net=${this.turnNs.path}`, '--', 'turnserver', ...args], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.turnProcess = child;
    this.turnExited = new Promise((resolve) => child.once('exit', () => resolve()));
    let exited = false;
    void this.turnExited.then(() => { exited = true; });
    const wanted = this.stunServers.map((s) => `${s.address}:${s.port}`);
    const tls = `${this.turnTls.server.address}:${this.turnTls.server.port}`;
    await waitFor('coturn listening on every address', async () => {
      if (exited) throw new Error(`turnserver exited while starting:\n${this.coturnLog.slice(-2000)}`);
      const udp = (await this.turnNs.runner('ss', ['-Hlun'])).stdout;
      const tcp = (await this.turnNs.runner('ss', ['-Hltn'])).stdout;
      return wanted.every((w) => udp.includes(w) && tcp.includes(w)) && tcp.includes(tls);
    }, 15_000);
  }
}

/** Packets a router dropped as unsolicited on its WAN (input and forward). */
export async function droppedUnsolicited(router: Netns): Promise<number> {
  const ruleset = (await router.runner('nft', ['list', 'table', 'ip', 'natlab'])).stdout;
  return [...ruleset.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Packets a site's hosts sent to its router's public address (a site with more than one host: SiteOptions.hosts). */
export async function toPublicFromLan(site: Site): Promise<number> {
  const ruleset = (await site.routers[0]!.runner('nft', ['list', 'table', 'ip', 'natlab_lan'])).stdout;
  return [...ruleset.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** UDP conntrack entries of `router` matching the given original-direction fields. */
export async function conntrackUdp(router: Netns, orig: { src?: string; dst?: string; sport?: number; dport?: number }): Promise<string[]> {
  const args = ['-L', '-p', 'udp'];
  if (orig.src) args.push('--orig-src', orig.src);
  if (orig.dst) args.push('--orig-dst', orig.dst);
  if (orig.sport !== undefined) args.push('--sport', String(orig.sport));
  if (orig.dport !== undefined) args.push('--dport', String(orig.dport));
  const { stdout } = await router.runner('conntrack', args);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

async function forwarding(ns: Netns): Promise<void> {
  await ns.runner('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
}

/** Pure: SiteOptions.egress as a table of its own, so openEgress lifts it alone. */
export function egressRuleset(egress: 'tcp443' | 'no-udp'): string {
  const tcp = egress === 'tcp443' ? ' oifname "wan" tcp dport != 443 counter drop;' : '';
  return `table ip natlab_egress {
  chain forward { type filter hook forward priority filter; policy accept; oifname "wan" meta l4proto udp counter drop;${tcp} }
}
`;
}

/** Lifts SiteOptions.egress: the site lets everything out again, as its NAT kind does. */
export async function openEgress(site: Site): Promise<void> {
  await site.routers[site.routers.length - 1]!.runner('nft', ['delete', 'table', 'ip', 'natlab_egress']);
}

async function applyRuleset(ns: Netns, ruleset: string): Promise<void> {
  await ns.runner('nft', ['-f', '-'], { input: ruleset });
}

/** A veth pair created straight into both namespaces: nothing ever appears in the root namespace. */
async function link(a: Netns, nameA: string, b: Netns, nameB: string): Promise<void> {
  await run('ip', ['-n', a.name, 'link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, 'netns', b.name]);
  await run('ip', ['-n', a.name, 'link', 'set', nameA, 'up']);
  await run('ip', ['-n', b.name, 'link', 'set', nameB, 'up']);
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

// Runs in the child: imports the worker module and serves its exports over IPC.
const BOOTSTRAP = `
const mod = await import(process.env.NATLAB_MODULE);
process.on('message', async ({ id, method, args }) => {
  try {
    if (typeof mod[method] !== 'function') throw new Error('worker has no export ' + method);
    process.send({ id, ok: true, value: await mod[method](...args) });
  } catch (err) {
    const fields = Object.fromEntries(Object.entries(Object(err)).filter(([, v]) => v === null || typeof v !== 'object'));
    process.send({ id, ok: false, error: { ...fields, message: String(err?.message ?? err), name: err?.name, stack: err?.stack } });
  }
});
process.send({ ready: true });
`;

interface Reply {
  id?: number;
  ready?: boolean;
  ok?: boolean;
  value?: unknown;
  /** The error's message, name, stack and its own scalar fields (code, errorCode...). */
  error?: { message: string; name?: string; stack?: string; [field: string]: unknown };
}

/** A node process inside a namespace; call(method, ...args) runs the module's export there. */
/** Where a worker runs: a lab namespace, or any namespace by path (a pod's sandbox). */
export type WorkerNs = Pick<Netns, 'name' | 'path'>;

export class NsWorker {
  private nextId = 0;
  private stderr = '';
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  private gone = false;

  private constructor(private readonly child: ChildProcess, readonly ns: WorkerNs) {
    const keep = (d: Buffer): void => { this.stderr = (this.stderr + d.toString()).slice(-4000); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (m: Reply) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.value);
      // The worker's stack replaces ours: it says where inside the namespace it failed.
      else p.reject(Object.assign(new Error(), { ...m.error, message: `${ns.name}: ${m.error?.message}` }));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.gone = true;
      for (const p of this.pending.values()) p.reject(new Error(`worker in ${ns.name} exited (${code ?? signal}):\n${this.stderr}`));
      this.pending.clear();
      resolve();
    }));
  }

  static async start(ns: WorkerNs, modulePath: string): Promise<NsWorker> {
    const child = spawn('nsenter', [`--net=${ns.path}`, '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', BOOTSTRAP], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NATLAB_MODULE: modulePath },
    });
    const worker = new NsWorker(child, ns);
    const ready = new Promise<void>((resolve) => child.on('message', (m: Reply) => { if (m.ready) resolve(); }));
    await Promise.race([ready, worker.exited.then(() => { throw new Error(`worker in ${ns.name} exited while starting:\n${worker.stderr}`); })]);
    return worker;
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.gone) return Promise.reject(new Error(`worker in ${this.ns.name} has exited:\n${this.stderr}`));
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, method, args });
    });
  }

  async stop(): Promise<void> {
    await stopChild(this.child, this.exited);
  }
}

/** A fresh lab for each test of the calling file. */
export function useNatLab(): () => NatLab {
  return perTest('the NAT lab', () => NatLab.create(), (lab) => lab.destroy());
}

/**
 * Takes the site's host off the network without a word (its default route's link down):
 * peers learn of it only by their own timeouts, as when a node or hub loses power or its
 * uplink. Returns what puts it back (the link up and the default route again).
 */
export async function cutUplink(site: Site): Promise<() => Promise<void>> {
  const routes = JSON.parse((await site.host.runner('ip', ['-json', 'route', 'show', 'default'])).stdout) as { dev: string; gateway?: string }[];
  const r = routes[0];
  if (!r) throw new Error(`${site.host.name} has no default route to cut`);
  await site.host.runner('ip', ['link', 'set', r.dev, 'down']);
  return async () => {
    await site.host.runner('ip', ['link', 'set', r.dev, 'up']);
    await site.host.runner('ip', ['route', 'replace', 'default', ...(r.gateway ? ['via', r.gateway] : []), 'dev', r.dev]);
  };
}

/** A site host's second way out (NatLab.addUplink). */
export interface Uplink {
  router: Netns;
  /** The host's link to it, its gateway there and its address on it. */
  dev: string;
  gateway: string;
  hostAddress: string;
  /** The router's WAN address: the node's public address once its default route goes this way. */
  publicAddress: string;
}

/** The host's default route through `via` (NatLab.addUplink): what the node's packets leave by, hence its public address, changes. */
export async function moveDefaultRoute(site: Site, via: Pick<Uplink, 'gateway' | 'dev'>): Promise<void> {
  await site.host.runner('ip', ['route', 'replace', 'default', 'via', via.gateway, 'dev', via.dev]);
}

/**
 * Replaces the host's address on its LAN link (`eth0`) with `address` (same /24), as a
 * new DHCP lease does: old address out, new one in, the default route back, in one
 * `ip -batch`. The router keeps NATing it (not for full cone, whose DNAT names the old one).
 * Returns the site as seen afterwards (hostAddress and lan[0] updated).
 */
export async function renumberHost(site: Site, address: string): Promise<Site> {
  if (site.kind === 'full-cone' || site.kind === 'public') throw new Error(`renumbering is modelled for NAT sites whose router NATs any LAN address, not ${site.kind}`);
  const gateway = `10.${site.index}.0.1`;
  await site.host.runner('ip', ['-batch', '-'], {
    input: `address del ${site.hostAddress}/24 dev eth0\naddress add ${address}/24 dev eth0\nroute replace default via ${gateway} dev eth0\n`,
  });
  return { ...site, hostAddress: address, lan: [{ host: site.host, address }, ...site.lan.slice(1)] };
}

/**
 * The site's (innermost) NAT router reboots: its conntrack table is emptied and its
 * masquerade now picks ports from `ports` (as a router that comes back maps every flow
 * anew, to other ports), its filtering as before. Every mapping of the site changes.
 */
export async function rebootRouter(site: Site, ports: { from: number; to: number } = { from: 40000, to: 49999 }): Promise<void> {
  if (site.kind === 'public') throw new Error('a public site has no router');
  const router = site.routers[0]!;
  const ruleset = natRuleset(site.kind === 'double-nat' ? 'home-router' : site.kind, site.hostAddress)
    .replace(/oifname "wan" masquerade( fully-random)?;/, (m, random: string | undefined) => `oifname "wan" meta l4proto { tcp, udp } masquerade to :${ports.from}-${ports.to}${random ?? ''}; ${m}`);
  await router.runner('nft', ['-f', '-'], { input: `table ip natlab\ndelete table ip natlab\n${ruleset}` });
  await router.runner('conntrack', ['-F']);
}
