// One emulated host as a Kubernetes node: the NAT lab's network namespace plus a mount
// namespace of its own (node-mounts.ts). Everything the node runs (OVS, containerd, the
// kubelet, the systemd-style agent, and every container) lives in both, so destroy() can
// find and stop all of it by its mount namespace, whatever forked what.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../../../lib/poll.js';
import { execRunner, type RunOptions, type RunResult } from '../../../lib/runner.js';
import type { Site } from '../natlab.js';
import { run } from '../sh.js';
import { mountScript, NODE_PATHS } from './node-mounts.js';

/** Where mount namespaces are pinned: a private mount, as `unshare --mount=FILE` requires. */
const PIN_DIR = '/run/warren-kube';

async function ensurePinDir(): Promise<void> {
  mkdirSync(PIN_DIR, { recursive: true });
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[4] === PIN_DIR)) {
    await run('mount', ['--bind', PIN_DIR, PIN_DIR]);
  }
  await run('mount', ['--make-private', PIN_DIR]);
}

export interface Daemon {
  name: string;
  pid: number;
  log: string;
  exited: Promise<number | null>;
  running(): boolean;
}

export class KubeNode {
  /** The pinned mount namespace. */
  readonly mnt: string;
  /** The kubelet's cgroup root: every node's pods under a tree of their own. */
  readonly cgroupRoot: string;
  private readonly daemons: Daemon[] = [];

  private constructor(readonly name: string, readonly site: Site, readonly root: string) {
    this.mnt = join(PIN_DIR, `${process.pid}-${name}`);
    this.cgroupRoot = `/warren-${process.pid}-${name}`;
  }

  static async create(name: string, site: Site, root: string): Promise<KubeNode> {
    const node = new KubeNode(name, site, root);
    await ensurePinDir();
    mkdirSync(join(root, 'logs'), { recursive: true });
    for (const p of NODE_PATHS) mkdirSync(p, { recursive: true }); // mount points on the machine
    writeFileSync(node.mnt, '');
    await run('nsenter', [`--net=${site.host.path}`, '--', 'unshare', `--mount=${node.mnt}`, '--propagation', 'private', '--',
      'sh', '-c', mountScript(root)]);
    makeCgroupTrees(node.cgroupRoot);
    return node;
  }

  private enter(file: string, args: readonly string[]): [string, string[]] {
    return ['nsenter', [`--net=${this.site.host.path}`, `--mount=${this.mnt}`, '--', file, ...args]];
  }

  exec(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    const [f, a] = this.enter(file, args);
    return execRunner(f, a, options);
  }

  async sh(script: string, options?: RunOptions): Promise<string> {
    return (await this.exec('bash', ['-euo', 'pipefail', '-c', script], options)).stdout;
  }

  /** A long-running process in the node, its own session (as systemd starts services), output to logs/<name>.log. */
  spawn(name: string, file: string, args: readonly string[], env: Record<string, string> = {}): Daemon {
    const log = join(this.root, 'logs', `${name}.log`);
    const fd = openSync(log, 'a');
    const [f, a] = this.enter(file, args);
    const child = spawn(f, a, { stdio: ['ignore', fd, fd], detached: true, env: { ...process.env, ...env } });
    closeSync(fd);
    child.unref();
    let done = false;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { done = true; resolve(code); }));
    const daemon: Daemon = { name, pid: child.pid!, log, exited, running: () => !done };
    this.daemons.push(daemon);
    return daemon;
  }

  logOf(name: string): string {
    try {
      return readFileSync(join(this.root, 'logs', `${name}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Stops one daemon and its process group, as systemd's KillMode=mixed would (SIGTERM,
   * then SIGKILL after `graceMs`). What it started in a session of its own (the agent's
   * wireguard-go) stays, as under KillMode=process.
   */
  async stopDaemon(d: Daemon, graceMs = 10_000): Promise<void> {
    if (!d.running()) return;
    const signal = (s: NodeJS.Signals): void => { try { process.kill(-d.pid, s); } catch { /* gone */ } };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await d.exited;
    clearTimeout(timer);
  }

  /**
   * Pids of everything the node runs: the processes in its mount namespace (daemons,
   * shims) and those in its cgroup tree (containers, which have mount namespaces of their own).
   */
  processes(): number[] {
    return [...new Set([...this.mountNamespaceProcesses(), ...cgroupProcesses(this.cgroupRoot)])];
  }

  private mountNamespaceProcesses(): number[] {
    let ino: number;
    try {
      ino = statSync(this.mnt).ino;
    } catch {
      return [];
    }
    const own = `mnt:[${ino}]`;
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readlinkSync(`/proc/${entry}/ns/mnt`) === own) pids.push(Number(entry));
      } catch { /* exited meanwhile */ }
    }
    return pids;
  }

  /** Everything the node ran, its mount namespace and its cgroups go; safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.daemons.map((d) => this.stopDaemon(d, 5_000)));
    for (let round = 0; round < 20; round++) {
      const left = this.processes();
      if (left.length === 0) break;
      for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await pollUntil(() => this.processes().length === 0, 2_000, 50);
    }
    if (existsSync(this.mnt)) {
      await run('umount', [this.mnt], { allowFailure: true });
      rmSync(this.mnt, { force: true });
    }
    removeCgroupTrees(this.cgroupRoot);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The kubelet refuses a cgroupRoot missing from any hierarchy: make it in every one. */
function makeCgroupTrees(path: string): void {
  for (const r of cgroupHierarchies()) {
    const dir = join(r, path);
    mkdirSync(dir, { recursive: true });
    // cgroup v1 leaves a new cpuset group without CPUs or memory nodes: copy the parent's (TESTBED.md).
    if (r.endsWith('/cpuset')) for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(r, f)));
  }
}

/** The v2 tree, or every mounted v1 controller (not the cpu -> cpu,cpuacct aliases). */
function cgroupHierarchies(): string[] {
  const base = '/sys/fs/cgroup';
  if (existsSync(join(base, 'cgroup.controllers'))) return [base];
  return readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(base, e.name));
}

/** Pids in `path` or below, in any hierarchy. */
function cgroupProcesses(path: string): number[] {
  const pids = new Set<number>();
  for (const r of cgroupHierarchies()) {
    const walk = (d: string): void => {
      try {
        for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (line) pids.add(Number(line));
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      } catch { /* not there, or gone meanwhile */ }
    };
    walk(join(r, path));
  }
  return [...pids];
}

/** rmdir, deepest first, of `path` under every cgroup v1 controller (or the v2 tree). */
function removeCgroupTrees(path: string): void {
  for (const r of cgroupHierarchies()) {
    const top = join(r, path);
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string): void => {
      dirs.push(d);
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    };
    try { walk(top); } catch { continue; }
    for (const d of dirs.reverse()) { try { rmdirSync(d); } catch { /* busy or gone: reported by the caller's residue check */ } }
  }
}
