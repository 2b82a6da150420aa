// The CNF's ipsec service on one emulated node: strongswan-starter reading /etc/ipsec.conf
// through stroke, started the way the CNF's procd does (`starter --daemon charon --nofork`,
// `cnf-openwrt/src/ipsec_exec`, start_service), with the CNF's own file layout.
//
// Isolation: the starter has no option for the secrets file, the ipsec.d directories or
// its pid files, so each node gets a private mount namespace, held open by a `sleep`, in
// which a tmpfs covers /run (pid files, charon.ctl) and bind mounts put the node's own
// files on /etc/ipsec.conf, /etc/ipsec.secrets, /etc/strongswan.conf and /etc/ipsec.d.
// Nothing of the host's /etc changes (the mounts are private to that namespace).
// TRAP: a file bind mount pins the inode; the files are rewritten in place, never renamed
// over, or the starter keeps reading the old content.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acceptsConnections } from '../../../lib/unix-socket.js';
import { ViciClient } from '../../../node-agent/gateway/vici/client.js';
import type { ViciMessage, ViciValue } from '../../../node-agent/gateway/vici/codec.js';
import type { Netns } from '../netns.js';
import { readIfExists, run, waitFor } from '../sh.js';
import { certPaths, renderIpsecConf, renderIpsecSecrets, renderStrongswanConf, type CnfRemote, type LabDepartures, type Proposal } from './cnf-config.js';

/** What the CNF gets from SCC for each remote: its certificate and key, and data.ca split on underscores. */
export interface CnfCredentials {
  certPem: string;
  keyPem: string;
  caPems: readonly string[];
}

/** SCC's certificate `data` as the CNF's save_cert decodes it: base64 fields, CAs split on `_`. */
export function credentialsFromScc(data: { ca: string; cert: string; key: string }): CnfCredentials {
  const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');
  return { certPem: decode(data.cert), keyPem: decode(data.key), caPems: data.ca.split(/_+/).filter((p) => p !== '').map(decode) };
}

export interface ChildSaState {
  name: string;
  state: string;
  localTs: string[];
  remoteTs: string[];
  bytesIn: number;
  bytesOut: number;
}

/** One IKE_SA from list-sas, reduced to what a test asserts on. */
export interface IkeSaState {
  /** The ipsec.conf conn name. */
  conn: string;
  uniqueId: string;
  state: string;
  remoteId: string;
  remoteHost: string;
  localVips: string[];
  remoteVips: string[];
  children: ChildSaState[];
}

const str = (v: ViciValue | ViciValue[] | ViciMessage | undefined): string => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : '');
const strs = (v: ViciValue | ViciValue[] | ViciMessage | undefined): string[] => (Array.isArray(v) ? v.map((x) => x.toString()) : []);
const sub = (v: ViciValue | ViciValue[] | ViciMessage | undefined): ViciMessage =>
  (v !== undefined && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? v : {});

const SYSTEM_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };

export class CnfIpsec {
  private starter: ChildProcess | undefined;
  private starterExited: Promise<void> = Promise.resolve();
  private remotes: CnfRemote[] = [];

  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    private readonly holder: ChildProcess,
    private readonly holderExited: Promise<void>,
    private readonly proposals: readonly Proposal[],
    private readonly lab: LabDepartures,
  ) {}

  get etc(): string {
    return join(this.dir, 'etc');
  }

  get viciSocket(): string {
    return join(this.dir, 'charon.vici');
  }

  /** The mount namespace's holder; `nsenter -t` this pid reaches the node's /run and /etc. */
  get pid(): number {
    return this.holder.pid!;
  }

  /**
   * Lays out the node's files and the namespace holding them; charon starts with start().
   * `installVirtualIp` is is_vti_enabled's outcome: no on hubs (VTI-based), yes on devices.
   */
  static async create(ns: Netns, dir: string, o: { proposals: readonly Proposal[]; installVirtualIp: boolean; lab: LabDepartures }): Promise<CnfIpsec> {
    const etc = join(dir, 'etc');
    for (const d of ['certs', 'private', 'cacerts', 'crls', 'aacerts', 'ocspcerts', 'acerts']) mkdirSync(join(etc, 'ipsec.d', d), { recursive: true, mode: 0o700 });
    writeFileSync(join(etc, 'strongswan.conf'), renderStrongswanConf({
      installVirtualIp: o.installVirtualIp, viciSocket: join(dir, 'charon.vici'), logFile: join(dir, 'charon.log'), resolvConf: join(dir, 'resolv.conf'),
    }));
    writeFileSync(join(etc, 'ipsec.conf'), renderIpsecConf([], o.proposals, o.lab));
    writeFileSync(join(etc, 'ipsec.secrets'), renderIpsecSecrets([]), { mode: 0o600 });
    const binds = ['ipsec.conf', 'ipsec.secrets', 'strongswan.conf', 'ipsec.d'].map((f) => `mount --bind ${join(etc, f)} /etc/${f}`).join(' && ');
    // ip netns exec, unshare and sh all exec: the holder's pid is sleep's.
    const holder = spawn('ip', ['netns', 'exec', ns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      `mount -t tmpfs tmpfs /run && ${binds} && exec sleep infinity`], { stdio: ['ignore', 'ignore', 'pipe'], env: SYSTEM_ENV });
    let stderr = '';
    holder.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const holderExited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    let gone = false;
    void holderExited.then(() => (gone = true));
    const node = new CnfIpsec(ns, dir, holder, holderExited, o.proposals, o.lab);
    try {
      await waitFor(`the mount namespace of ${ns.name}`, async () => {
        if (gone) throw new Error(`the mount namespace holder in ${ns.name} exited: ${stderr}`);
        try {
          return readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim() === 'sleep';
        } catch {
          return false;
        }
      }, 10_000, 20);
    } catch (err) {
      await node.destroy();
      throw err;
    }
    return node;
  }

  /** Writes a remote's certificate files as save_cert does and keeps the remote for the next render. */
  setRemote(remote: CnfRemote, credentials: CnfCredentials): void {
    const p = certPaths(remote.name);
    writeFileSync(join(this.dir, p.cert), credentials.certPem);
    writeFileSync(join(this.dir, p.key), credentials.keyPem, { mode: 0o600 });
    credentials.caPems.forEach((pem, i) => writeFileSync(join(this.dir, p.ca(i)), pem));
    this.remotes = [...this.remotes.filter((r) => r.name !== remote.name), remote];
  }

  /** The expected `conn` names, in the file's order. */
  get connNames(): string[] {
    return this.remotes.map((r) => `${r.name}-${r.connection.name}`);
  }

  /** prepare_env: both files rewritten in place (see the header's trap). */
  render(): void {
    writeFileSync(join(this.etc, 'ipsec.conf'), renderIpsecConf(this.remotes, this.proposals, this.lab));
    writeFileSync(join(this.etc, 'ipsec.secrets'), renderIpsecSecrets(this.remotes), { mode: 0o600 });
  }

  ipsecConf(): string {
    return readFileSync(join(this.etc, 'ipsec.conf'), 'utf8');
  }

  ipsecSecrets(): string {
    return readFileSync(join(this.etc, 'ipsec.secrets'), 'utf8');
  }

  /** procd's start_service: renders, runs the starter, resolves once charon holds every conn. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.starter) throw new Error(`the ipsec service in ${this.ns.name} is already running`);
    this.render();
    const out = openSync(join(this.dir, 'starter.out'), 'a');
    // nsenter without a pid namespace execs: the child's pid is the starter's, so procd's signals reach it.
    const child = spawn('nsenter', ['-t', String(this.pid), '-m', '-n', '/usr/lib/ipsec/starter', '--daemon', 'charon', '--nofork'],
      { stdio: ['ignore', out, out], env: SYSTEM_ENV });
    closeSync(out);
    this.starter = child;
    this.starterExited = new Promise((resolve) => child.once('exit', () => resolve()));
    let exited = false;
    void this.starterExited.then(() => (exited = true));
    await waitFor(`charon and its conns in ${this.ns.name}`, async () => {
      if (exited) throw new Error(`the starter in ${this.ns.name} exited:\n${this.log().slice(-3000)}`);
      return (await acceptsConnections(this.viciSocket)) && (await this.hasConns(this.connNames));
    }, timeoutMs, 50);
  }

  /**
   * procd's stop: SIGTERM to the starter, which stops charon (charon sends a DELETE for
   * every IKE_SA on its way out) and exits. charon is killed by its pid file if the
   * starter had to be killed. Idempotent.
   */
  async stop(): Promise<void> {
    const child = this.starter;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await this.starterExited;
      clearTimeout(killer);
    }
    this.starter = undefined;
    await this.killCharonLeftBehind();
  }

  /** /etc/init.d/ipsec restart, which SD-EWAN's CRD controller calls after every CR change: every tunnel drops. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * ipsec_exec's reload_service (not what SD-EWAN calls): `ipsec rereadall` then `ipsec
   * reload`, after which the starter re-adds every conn from the new file. Resolves once
   * charon holds exactly the rendered conns.
   */
  async reload(timeoutMs = 30_000): Promise<void> {
    if (!this.starter) throw new Error(`the ipsec service in ${this.ns.name} is not running`);
    this.render();
    await this.ipsec(['rereadall']);
    await this.ipsec(['reload']);
    await waitFor(`the reloaded conns in ${this.ns.name}`, () => this.hasConns(this.connNames, true), timeoutMs, 50);
  }

  /** The `ipsec` command inside the node (statusall, leases, listcerts...). */
  async ipsec(args: readonly string[]): Promise<string> {
    return run('nsenter', ['-t', String(this.pid), '-m', '-n', 'ipsec', ...args], { env: SYSTEM_ENV });
  }

  /** list-sas through the vici plugin (the CNF's status module scrapes `ipsec status` instead). */
  async sas(): Promise<IkeSaState[]> {
    const vici = await ViciClient.connect(this.viciSocket);
    try {
      const events = await vici.list('list-sas');
      return events.flatMap((e) => Object.entries(e).map(([conn, v]) => {
        const sa = sub(v);
        return {
          conn, uniqueId: str(sa.uniqueid), state: str(sa.state), remoteId: str(sa['remote-id']), remoteHost: str(sa['remote-host']),
          localVips: strs(sa['local-vips']), remoteVips: strs(sa['remote-vips']),
          children: Object.values(sub(sa['child-sas'])).map(sub).map((c) => ({
            name: str(c.name), state: str(c.state), localTs: strs(c['local-ts']), remoteTs: strs(c['remote-ts']),
            bytesIn: Number(str(c['bytes-in']) || 0), bytesOut: Number(str(c['bytes-out']) || 0),
          })),
        };
      }));
    } finally {
      vici.close();
    }
  }

  /** charon's log and whatever the starter printed. */
  log(): string {
    const read = (f: string): string => readIfExists(join(this.dir, f));
    return `${read('starter.out')}${read('charon.log')}`;
  }

  /** Stops charon and the namespace holder; removes the node's directory. */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.holder.exitCode === null && this.holder.signalCode === null) {
      this.holder.kill('SIGKILL');
      await this.holderExited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async hasConns(names: readonly string[], exactly = false): Promise<boolean> {
    let vici: ViciClient | undefined;
    try {
      vici = await ViciClient.connect(this.viciSocket, { timeoutMs: 5000 });
      const loaded = (await vici.list('list-conns')).flatMap((e) => Object.keys(e));
      return names.every((n) => loaded.includes(n)) && (!exactly || loaded.length === names.length);
    } catch {
      return false;
    } finally {
      vici?.close();
    }
  }

  private async killCharonLeftBehind(): Promise<void> {
    const read = (path: string): string | undefined => {
      try {
        return readFileSync(path, 'utf8').trim();
      } catch {
        return undefined;
      }
    };
    const pid = Number(read(`/proc/${this.pid}/root/run/charon.pid`));
    // Only a charon of this node: one living in this node's mount namespace.
    if (!pid || !readlinkOr(`/proc/${pid}/ns/mnt`) || readlinkOr(`/proc/${pid}/ns/mnt`) !== readlinkOr(`/proc/${this.pid}/ns/mnt`)) return;
    process.kill(pid, 'SIGKILL');
    // A zombie counts as gone: whoever adopted it reaps it, not us.
    await waitFor(`charon ${pid} to exit`, () => / Z /.test(read(`/proc/${pid}/stat`)?.replace(/^.*\)/, ' ') ?? ' Z '), 10_000, 50);
  }
}

function readlinkOr(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
