// The gateway's own strongSwan charon, driven only over VICI. It gets its own
// strongswan.conf (never /etc/strongswan.*: a host's IPsec is not ours to change) and its
// own /run (charon refuses to start while /run/charon.pid names a live charon, which would
// be the host's, or another emulated node's in the lab).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { WarrenError } from '../../lib/errors.js';
import { acceptsConnections } from '../../lib/unix-socket.js';
import { writeFileAtomic } from '../../lib/write-file.js';
import type { Runner } from '../../lib/runner.js';

export const CHARON_BINARY = '/usr/lib/ipsec/charon';

export type IpsecDataPath = 'kernel' | 'libipsec';

export class CharonError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHARON', message, options);
  }
}

/**
 * What Debian's strongswan-charon and libcharon-extra-plugins give without the openssl
 * plugin: gmp for RSA and MODP (what SD-EWAN's CNF charon has too: no ECP, no GCM for IKE);
 * kdf, needed since 5.9.8 without openssl. kernel-libipsec, when loaded, must come before
 * kernel-netlink: the first IPsec backend loaded wins.
 */
export function charonPlugins(dataPath: IpsecDataPath): string[] {
  return [
    'random', 'nonce', 'aes', 'sha1', 'sha2', 'hmac', 'gmp', 'pem', 'pkcs1', 'pkcs8', 'x509', 'pubkey', 'kdf',
    'revocation', 'constraints', ...(dataPath === 'libipsec' ? ['kernel-libipsec'] : []), 'kernel-netlink', 'socket-default', 'vici',
  ];
}

export interface CharonConfig {
  dataPath: IpsecDataPath;
  viciSocket: string;
  logFile: string;
  /**
   * IKEv2 retransmissions: charon's defaults (4 s, x1.8, 5 tries: 165 s) decide when a
   * silent hub is dead; these decide it within seconds (timeout * base^n summed over tries+1).
   */
  retransmit: { timeoutSeconds: number; base: number; tries: number };
}

/**
 * The routing table charon (and kernel-libipsec, which installs routes into the TUN device
 * for every SA whatever install_routes says) writes to. Not 220, a host's own strongSwan's.
 * The policy rule charon adds for it is removed (routes.ts): with the hub's side 0.0.0.0/0
 * it would send everything of the node into the tunnel, WireGuard and etcd included, where
 * only the overlay's ranges belong; those the gateway routes itself, in the main table.
 */
export const CHARON_ROUTING_TABLE = 2201;

/** Pure: strongswan.conf. */
export function strongswanConf(c: CharonConfig): string {
  return `charon {
  load = ${charonPlugins(c.dataPath).join(' ')}
  install_routes = no
  routing_table = ${CHARON_ROUTING_TABLE}
  routing_table_prio = ${CHARON_ROUTING_TABLE}
  install_virtual_ip = yes
  retransmit_timeout = ${c.retransmit.timeoutSeconds}
  retransmit_base = ${c.retransmit.base}
  retransmit_tries = ${c.retransmit.tries}
  # kernel-libipsec keeps workers busy for good: with 8, vici stopped answering.
  threads = 16
  filelog {
    gateway {
      path = ${c.logFile}
      default = 1
      ike = 1
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = unix://${c.viciSocket}
    }
  }
}
`;
}

/** Pure: seconds until charon gives up on a silent peer, after its last DPD or request. */
export function retransmitGiveUpSeconds(r: CharonConfig['retransmit']): number {
  let total = 0;
  for (let n = 0; n <= r.tries; n++) total += r.timeoutSeconds * r.base ** n;
  return total;
}

/**
 * Whether the kernel carries ESP: an ESP state added in a throwaway network namespace
 * (nothing of the node's is touched). This machine's kernel answers "Requested type not
 * found" for every algorithm; then charon's kernel-libipsec carries ESP over a TUN device.
 */
export async function probeKernelEsp(runner: Runner): Promise<boolean> {
  const key = `0x${'11'.repeat(32)}`;
  const r = await runner('unshare', ['--net', 'ip', 'xfrm', 'state', 'add', 'src', '192.0.2.1', 'dst', '192.0.2.2', 'proto', 'esp', 'spi', '0x100',
    'mode', 'tunnel', 'enc', 'cbc(aes)', key, 'auth-trunc', 'hmac(sha256)', key, '128'], { allowFailure: true });
  return r.exitCode === 0;
}


export interface CharonProcess {
  readonly viciSocket: string;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Starts charon with its config in `dir` (in the network namespace at `netnsPath`, the
 * caller's when absent); resolves once its VICI socket accepts connections.
 */
export async function startCharon(dir: string, config: Omit<CharonConfig, 'viciSocket' | 'logFile'>, netnsPath?: string, timeoutMs = 20_000): Promise<CharonProcess> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const viciSocket = join(dir, 'charon.vici');
  const conf = join(dir, 'strongswan.conf');
  writeFileAtomic(conf, strongswanConf({ ...config, viciSocket, logFile: join(dir, 'charon.log') }), 0o600);
  const out = openSync(join(dir, 'charon.out'), 'a');
  // setpriv, nsenter, unshare and sh exec: the child's pid is charon's, so signals reach it.
  const inNs = netnsPath ? ['nsenter', `--net=${netnsPath}`] : [];
  // charon dies with the agent (parent-death signal, kept across exec): a killed agent must
  // not leave a charon holding the device's SAs while a standby brings up its own.
  const [file, ...args] = ['setpriv', '--pdeathsig', 'TERM', ...inNs, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs /run && exec ${CHARON_BINARY}`];
  const child: ChildProcess = spawn(file!, args, { stdio: ['ignore', out, out], env: { ...process.env, STRONGSWAN_CONF: conf } });
  closeSync(out);
  let running = true;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running = false;
    resolve(code);
  }));
  const stop = async (): Promise<void> => {
    if (!running) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await acceptsConnections(viciSocket))) {
    if (!running) throw new CharonError(`charon exited while starting; see ${join(dir, 'charon.out')} and charon.log`);
    if (Date.now() > deadline) {
      await stop();
      throw new CharonError(`charon's VICI socket ${viciSocket} did not open within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { viciSocket, exited, stop };
}
