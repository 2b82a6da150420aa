// warren cni-server: the resident CNI server of a node (README, "The resident fast path").
// Listens on a unix socket (--socket, default /run/warren/cni.sock) that only root may use,
// and serves the CNI executable's verbs through long-lived connections. Stopping it costs
// pods nothing: the executable then does the work itself.
import { accessSync, constants, mkdirSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_RESIDENT_SOCKET, RESIDENT_BOUNDS, residentSocketProblem } from '../../lib/cni-resident.js';
import { withSystemPath } from '../../lib/runner.js';
import { stopSignals } from '../../lib/signals.js';
import { spawnRunner, spawnRunnerVia } from '../../lib/spawn-runner.js';
import { listenUnix } from '../../lib/unix-socket.js';
import { ovsdbPool } from './ovsdb-pool.js';
import { serveConnection } from './serve.js';
import { Spawner } from './spawner.js';
import { RecentSteps } from '../recent-steps.js';

// Pod starts wait on this one process, and 50 executables starting at once (each a Node
// start) starved it at nice 0 in the bench: requests sat unread past the fence bound and
// went standalone. Its work is short: it may go first.
const NICE = -10;

/** Beside the executable (dist/bin, /warren/bin in the image): see spawner.c. */
const SPAWNER = join(dirname(process.execPath), 'warren-spawner');

/** The IPAM dies with whoever started it (serve.ts, requestRunner). */
const PDEATHSIG = ['setpriv', '--pdeathsig', 'SIGKILL', '--'];

// In-flight requests get this long to finish after a stop signal; the executables of any
// still running then see the connection close and work standalone.
const DRAIN_MS = 5_000;

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + '\n');
}

/** Whether `program` is an executable file on the PATH the server's commands get. */
function onPath(program: string): boolean {
  return withSystemPath(process.env.PATH).split(':').some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return statSync(join(dir, program)).isFile();
    } catch {
      return false;
    }
  });
}

function socketArgument(args: readonly string[]): string {
  const at = args.indexOf('--socket');
  const path = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith('--socket='))?.slice('--socket='.length);
  if (at < 0 && path === undefined) return DEFAULT_RESIDENT_SOCKET;
  const problem = residentSocketProblem(path);
  if (problem) {
    process.stderr.write(`warren cni-server: --socket ${JSON.stringify(path ?? '')} ${problem}\nusage: warren cni-server [--socket PATH]\n`);
    process.exit(2);
  }
  return path!;
}

async function main(): Promise<void> {
  const socketPath = socketArgument(process.argv.slice(2));
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  try {
    setPriority(NICE);
  } catch (err) {
    log('runs at its inherited priority', { error: String(err) }); // no CAP_SYS_NICE: slower under load, nothing worse
  }
  const pool = ovsdbPool();
  let busy = 0;
  const mntns = readlinkSync('/proc/self/ns/mnt');
  const ipamVersions = new Map<string, string[]>();
  const recentSteps = new RecentSteps();
  const hasVsctl = onPath('ovs-vsctl');
  // Started at the server's priority; the server's own spawns remain if it is missing or dies.
  const spawner = Spawner.start(SPAWNER, (why) => log('warren-spawner is gone: the server starts its programs itself from here on', { why }));
  if (!spawner) log('no warren-spawner beside the server: it starts its programs itself', { looked: SPAWNER });
  const runner = spawner ? spawner.runner(spawnRunner) : spawnRunner;
  const ipamRunner = spawner ? spawner.runner(spawnRunnerVia(PDEATHSIG), PDEATHSIG) : spawnRunnerVia(PDEATHSIG);
  const server = createServer((socket) =>
    serveConnection(socket, {
      now: Date.now,
      bounds: RESIDENT_BOUNDS,
      mntns,
      runner,
      ipamRunner,
      ovsdb: pool.connect,
      ipamVersions,
      recentSteps,
      hasVsctl,
      log,
      onIdle: (b) => (busy += b ? 1 : -1),
    }),
  );
  // Bound beside the path, then renamed over it: the newest server takes the path at once
  // (a rolling update surges the new pod beside the old one), and an executable never finds
  // it missing; the old server finishes what it began on its own, now nameless, socket.
  const partial = `${socketPath}.${process.pid}`;
  rmSync(partial, { force: true });
  await listenUnix(server, partial, 0o600);
  renameSync(partial, socketPath);
  const ours = statSync(socketPath).ino;
  log('listening', { socket: socketPath, pid: process.pid, ...(spawner ? { spawner: spawner.pid } : {}), ...(hasVsctl ? {} : { leaves: 'CHECK, GC, STATUS and a new bridge\'s ADD to the executable: no ovs-vsctl here' }) });

  const signal = await stopSignals(process, { exit: (status) => process.exit(status) });
  // New executables find no socket and work standalone from here on, unless a newer server
  // has the path already: its socket stays.
  if (inode(socketPath) === ours) rmSync(socketPath, { force: true });
  server.close();
  const deadline = Date.now() + DRAIN_MS;
  while (busy > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  pool.closeAll();
  spawner?.stop();
  log('stopped', { signal, unfinished: busy });
  process.exit(0);
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

void main();
