// A real strongSwan charon inside a test's network namespace, controlled only over its own
// vici socket. Each instance gets its own strongswan.conf (never /etc/strongswan.*) and its
// own /run: charon refuses to start when /run/charon.pid names a live charon, so two
// instances on one host need private mount namespaces (TESTBED.md, strongSwan row).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { acceptsConnections } from '../../lib/unix-socket.js';
import { charonPlugins } from '../../node-agent/gateway/charon.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { createCa, issueCertificate } from './pki.js';
import { readIfExists, waitFor } from './sh.js';

/** As the gateway's: kernel-libipsec, since this kernel has no ESP (node-agent/gateway/charon.ts says why each). */
export const CHARON_PLUGINS = charonPlugins('libipsec');

export interface CharonOptions {
  /** Where config, log and socket live; a temp dir removed by stop() when not given. */
  dir?: string;
  /** Text added inside `charon { }` (e.g. `retransmit_tries = 2`). */
  extraConf?: string;
  startTimeoutMs?: number;
}


export class Charon {
  private running = true;

  private constructor(
    readonly ns: Netns,
    readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly child: ChildProcess,
    private readonly exited: Promise<number | null>,
  ) {
    void exited.then(() => (this.running = false));
  }

  get socketPath(): string {
    return join(this.dir, 'charon.vici');
  }

  get uri(): string {
    return `unix://${this.socketPath}`;
  }

  /** charon's own log (filelog at level 1, ike 2) and whatever it printed. */
  log(): string {
    const read = (f: string): string => readIfExists(join(this.dir, f));
    return read('charon.log') + read('stdout');
  }

  static async start(ns: Netns, options: CharonOptions = {}): Promise<Charon> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'warren-charon-'));
    const conf = join(dir, 'strongswan.conf');
    writeFileSync(conf, `charon {
  load = ${CHARON_PLUGINS.join(' ')}
  # Not fewer: kernel-libipsec keeps several workers busy for good (checked: with 8, vici
  # accepted connections but never answered; without kernel-libipsec 8 were enough).
  threads = 16
  filelog {
    file {
      path = ${join(dir, 'charon.log')}
      default = 1
      ike = 2
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = unix://${join(dir, 'charon.vici')}
    }
  }
${options.extraConf ?? ''}
}
`);
    const out = openSync(join(dir, 'stdout'), 'a');
    // ip netns exec, unshare and sh all exec: the child's pid is charon's, so signals reach it.
    const child = spawn('ip', ['netns', 'exec', ns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon'], { stdio: ['ignore', out, out], env: { ...process.env, STRONGSWAN_CONF: conf } });
    closeSync(out);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const charon = new Charon(ns, dir, ownsDir, child, exited);
    try {
      await waitFor(`charon's vici socket in ${ns.name}`, async () => {
        if (!charon.running) throw new Error(`charon in ${ns.name} exited while starting:\n${charon.log().slice(-3000)}`);
        return acceptsConnections(charon.socketPath);
      }, options.startTimeoutMs ?? 20_000, 50);
    } catch (err) {
      await charon.stop();
      throw err;
    }
    return charon;
  }

  /**
   * SIGTERM: charon deletes its SAs (answering a pending initiate with `success = no`)
   * before it closes vici connections; SIGKILL is a crash: sockets just close. SIGKILL
   * follows when SIGTERM lingers. Idempotent.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(killer);
    }
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface IkeIdentity {
  /** The IKE identity, also the certificate's CN and DNS subjectAltName (charon matches either). */
  id: string;
  certPem: string;
  keyPem: string;
}

export interface IkePki {
  dir: string;
  caPem: string;
  identities: Map<string, IkeIdentity>;
  remove(): void;
}

/** A throwaway CA and one certificate per identity, RSA because charon here has no ECDSA. */
export async function makeIkePki(ids: readonly string[]): Promise<IkePki> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-ike-pki-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const ca = await createCa(dir, 'warren-test-ca', 'rsa');
    const identities = new Map<string, IkeIdentity>();
    for (const id of ids) {
      const own = await issueCertificate(dir, id, 'warren-test-ca', `subjectAltName=DNS:${id}`, 'rsa');
      identities.set(id, { id, certPem: readFileSync(own.cert, 'utf8'), keyPem: readFileSync(own.key, 'utf8') });
    }
    return { dir, caPem: readFileSync(ca.cert, 'utf8'), identities, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
