// The resident CNI server (`warren cni-server`) of an emulated node, started from the built
// executable under `ip netns exec` as the plugin is (the same /sys and /proc/net), its log
// read while it runs. Tests stop, continue and kill it by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Netns } from './netns.js';
import { waitFor } from './sh.js';

export const WARREN = resolve('dist/bin/warren');

export interface LogLine {
  msg: string;
  verb?: string;
  exitCode?: number;
  reason?: string;
}

export class CniServer {
  private out = '';
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess, readonly socket: string) {
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((r) => child.once('close', (code) => r(code)));
  }

  /** `shell`: a sh script that ends by running "$@" (the server), to give it a view of its own (a container's). */
  static async start(node: Netns, socket: string, shell?: string): Promise<CniServer> {
    const server = [WARREN, 'cni-server', '--socket', socket];
    const command = shell ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec', shell, 'sh', ...server] : server;
    const child = spawn('ip', ['netns', 'exec', node.name, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new CniServer(child, socket);
    let gone = false;
    void s.exited.then(() => (gone = true));
    await waitFor(`warren cni-server listening on ${socket}`, () => {
      if (gone) throw new Error(`warren cni-server exited: ${s.out}`);
      return s.lines().some((l) => l.msg === 'listening');
    });
    return s;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The server's log, one object per line. */
  lines(): LogLine[] {
    return this.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  }

  /** Requests the server answered itself (not refused, not fenced). */
  served(): LogLine[] {
    return this.lines().filter((l) => l.msg === 'served');
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, 'SIGCONT');
      process.kill(this.pid, 'SIGTERM');
    } catch {
      return;
    }
    await this.exited;
  }
}
