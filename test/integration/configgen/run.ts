// Runs the built warren-configgen binary as the init container would, with a clean
// environment and its own conf and state directories per emulated node.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { execRunner, type RunResult } from '../../../lib/runner.js';
import { authOffWarning } from '../../../lib/etcd/auth-status.js';
import { EtcdServer } from '../../helpers/etcd.js';

export const CONFIGGEN = resolve('dist/bin/warren-configgen');

export function requireBinary(): void {
  if (!existsSync(CONFIGGEN)) throw new Error(`${CONFIGGEN} is missing: run \`node scripts/build.mjs warren-configgen\` (make test builds it)`);
}

/** A node's private directories: conf dir, state dir, host-local data dir. */
export class NodeDirs {
  readonly root = mkdtempSync(join(tmpdir(), 'warren-configgen-'));
  readonly confDir = join(this.root, 'net.d');
  readonly stateDir = join(this.root, 'state');

  conflist(): Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.confDir, '10-warren.conflist'), 'utf8')) as Record<string, unknown>;
  }

  nodeFile(): Record<string, unknown> {
    return JSON.parse(readFileSync(join(this.stateDir, 'node.json'), 'utf8')) as Record<string, unknown>;
  }

  wroteNothing(): boolean {
    return !existsSync(this.confDir) && !existsSync(this.stateDir);
  }

  destroy(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * One real etcd for the test file, emptied of /warren before each test, and node
 * directories that go after each test. Call at the top of a file; `etcd` is set once
 * beforeAll ran.
 */
export function configgenFixture(): { readonly etcd: EtcdServer; node(): NodeDirs } {
  let etcd: EtcdServer | undefined;
  let dirs: NodeDirs[] = [];
  beforeAll(async () => {
    requireBinary();
    etcd = await EtcdServer.start();
  });
  afterAll(async () => {
    await etcd?.destroy();
  });
  beforeEach(async () => {
    await etcd!.etcdctl(['del', '--prefix', '/warren']);
  });
  afterEach(() => {
    for (const d of dirs) d.destroy();
    dirs = [];
  });
  return {
    get etcd() {
      if (!etcd) throw new Error('configgenFixture: etcd is not started yet (use it inside tests)');
      return etcd;
    },
    node() {
      const d = new NodeDirs();
      dirs.push(d);
      return d;
    },
  };
}

export const POOL = ['--pod-cidr', '10.244.0.0/16', '--node-bits', '8'];

/** The line every command that reaches `etcd` prints first while etcd authentication is off (the fixture's etcd). */
export function authOffLine(etcd: EtcdServer): string {
  return `warren-configgen: warning: ${authOffWarning([etcd.endpoint])}\n`;
}

/** The flags of one node's allocation against `etcd`. */
export function nodeArgs(etcd: EtcdServer, dirs: NodeDirs, node: string, extra: readonly string[] = []): string[] {
  return ['--etcd-endpoints', etcd.endpoint, '--node-name', node, '--cni-conf-dir', dirs.confDir, '--state-dir', dirs.stateDir,
    '--mtu', '1420', ...POOL, ...extra];
}

/** Runs the binary; the exit status is returned for the test to check. */
export function configgen(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return execRunner(CONFIGGEN, args, { env: { PATH: process.env.PATH, ...env }, replaceEnv: true, allowFailure: true });
}

/** Starts the binary and exposes its stderr as it comes, for tests that act mid-run. */
export function startConfiggen(args: readonly string[]): { stderr: () => string; kill: (signal: NodeJS.Signals) => void; done: Promise<RunResult> } {
  const child = spawn(CONFIGGEN, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
  return { stderr: () => stderr, kill: (signal) => void child.kill(signal), done };
}

export interface ListedAllocation {
  node: string;
  index: number;
  podSubnet: string;
  gateway: string;
  hostAddress: string;
}

export async function listJson(etcd: EtcdServer, extra: readonly string[] = []): Promise<{ pool: unknown; allocations: ListedAllocation[] }> {
  const r = await configgen(['list', '--json', '--etcd-endpoints', etcd.endpoint, ...extra]);
  if (r.exitCode !== 0) throw new Error(`list exited ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { pool: unknown; allocations: ListedAllocation[] };
}
