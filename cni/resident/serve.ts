// One connection of the resident server: one request, run by the same dispatch as the
// standalone executable, under the executable's environment, behind the request's fence.
// Requests are independent: each runs as soon as it arrives, none waits for another.
import type { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import {
  encodeLine, LineDecoder, parseRequest, parseViews, sharedPaths, type ResidentBounds, type ResidentMessage, type ResidentRequest,
} from '../../lib/cni-resident.js';
import type { Runner } from '../../lib/runner.js';
import type { OvsdbConnect } from '../context.js';
import { dispatch } from '../dispatch.js';
import { linkNames } from '../../lib/links.js';
import { pathIdentity } from '../../lib/path-identity.js';
import { DEFAULT_BRIDGE } from '../config.js';
import { Fence, fencedOvsdb, fencedRunner } from './fence.js';
import type { RecentSteps } from '../recent-steps.js';

export interface ServeOptions {
  /** Wall clock, ms: the executable stamps its request with the same one. */
  now: () => number;
  bounds: ResidentBounds;
  /** The server's own mount namespace. */
  mntns: string;
  runner: Runner;
  ipamRunner: Runner;
  ovsdb: OvsdbConnect;
  ipamVersions: Map<string, string[]>;
  recentSteps: RecentSteps;
  log: (msg: string, fields: Record<string, unknown>) => void;
  /** Whether ovs-vsctl can be run here: the warren-node image carries none (it needs all of Open vSwitch's packages). */
  hasVsctl: boolean;
  /** Tells when a request's work has ended, whatever its outcome (a stop waits for them). */
  onIdle?: (busy: boolean) => void;
}

/**
 * The verb's children get the executable's environment, as if the executable had started
 * them. Plugins from CNI_PATH (the IPAM) go through `ipamRunner`: they die with the server
 * (setpriv --pdeathsig), because an allocation that a killed server's orphan completes
 * after the executable's standalone retry began would make host-local refuse that retry
 * as a duplicate. The node's tools are quick and their repetition converges (add.ts).
 */
export function requestRunner(runner: Runner, ipamRunner: Runner, env: Record<string, string>): Runner {
  const dirs = (env.CNI_PATH ?? '').split(':').filter(Boolean).map((d) => resolve(d));
  return (file, args, options = {}) => {
    const opts = options.replaceEnv ? options : { ...options, env: { ...env, ...options.env }, replaceEnv: true };
    const fromCniPath = dirs.includes(resolve(dirname(file)));
    return (fromCniPath ? ipamRunner : runner)(file, args, opts);
  };
}

/**
 * What a server in another mount namespace (its own container) must ask the executable
 * before it can judge a request: the paths the verb relies on (sharedPaths), or none when
 * both see the same mount namespace and so the same files.
 */
export function pathsToCompare(req: ResidentRequest, mntns: string): string[] {
  if (req.mntns === mntns) return [];
  let config: unknown = null;
  try {
    config = JSON.parse(req.stdin);
  } catch {
    // the verb answers with the decode error; the environment's paths still count
  }
  return sharedPaths(req.env, config);
}

/**
 * A path the server does not see as the executable does (absent, or another file of the
 * same name: a netns, an IPAM plugin or host-local's store): it refuses the request, and the
 * executable answers it itself.
 */
export function unseen(paths: readonly string[], theirs: Record<string, string>): string | undefined {
  for (const path of paths) {
    if (pathIdentity(path) !== theirs[path]) return `${path} is not here what it is for the executable`;
  }
  return undefined;
}

/**
 * Whether the verb runs ovs-vsctl: CHECK, GC and STATUS read through it, and the ADD that
 * makes the bridge (a node's first) creates it with it. ADD on an existing bridge and DEL
 * use the OVSDB connection alone.
 */
export function needsVsctl(verb: string | undefined, stdin: string, linkExists: (name: string) => boolean): boolean {
  if (verb === 'CHECK' || verb === 'GC' || verb === 'STATUS') return true;
  if (verb !== 'ADD') return false;
  let bridge: unknown;
  try {
    bridge = (JSON.parse(stdin) as { bridge?: unknown }).bridge ?? DEFAULT_BRIDGE;
  } catch {
    return false; // the answer is a decode error
  }
  return typeof bridge === 'string' && !linkExists(bridge);
}

export function serveConnection(socket: Socket, opts: ServeOptions): void {
  const decoder = new LineDecoder();
  let fence: Fence | undefined;
  let received = false;
  let req: ResidentRequest | undefined;
  let compare: string[] = [];
  const send = (m: ResidentMessage): void => {
    if (!socket.destroyed && socket.writable) socket.write(encodeLine(m));
  };
  const refuse = (started: boolean, reason: string): void => {
    send({ t: 'refused', started, reason });
    socket.end();
  };
  socket.setEncoding('utf8');
  socket.on('error', () => {}); // the executable went away: its fence says so on 'close'
  socket.on('close', () => {
    fence?.close();
    if (req && !received) opts.log('refused', { verb: req.env.CNI_COMMAND, reason: 'the executable closed the connection before it described its paths' });
  });
  socket.on('data', (chunk: string) => {
    if (received) return;
    let lines: string[];
    try {
      lines = decoder.push(chunk);
    } catch (err) {
      received = true;
      return refuse(false, (err as Error).message);
    }
    for (const line of lines) {
      if (!req) {
        req = parseRequest(line);
        if (!req) {
          received = true;
          return refuse(false, 'not a request');
        }
        fence = new Fence(opts.now, opts.bounds.fenceMs, req.sentAt);
        compare = pathsToCompare(req, opts.mntns);
        if (compare.length > 0) {
          // A request that waited too long is refused before anything is asked of its sender.
          if (!fence.open()) {
            received = true;
            return void run(req, fence, undefined);
          }
          send({ t: 'stat', paths: compare });
          continue;
        }
        received = true;
        return void run(req, fence, undefined);
      }
      received = true;
      const views = parseViews(line);
      if (!views) return refuse(false, 'not the views asked for');
      return void run(req, fence!, unseen(compare, views));
    }
  });

  async function run(req: ResidentRequest, f: Fence, notSeen: string | undefined): Promise<void> {
    const started = opts.now();
    const verb = req.env.CNI_COMMAND;
    if (!f.beat()) {
      opts.log('refused', { verb, reason: f.tripped });
      return refuse(false, f.tripped!);
    }
    const blind = notSeen
      ?? (!opts.hasVsctl && needsVsctl(verb, req.stdin, (name) => linkNames().has(name)) ? 'ovs-vsctl is not installed here' : undefined);
    if (blind) {
      opts.log('refused', { verb, reason: blind });
      return refuse(false, blind);
    }
    send({ t: 'beat' });
    const beats = setInterval(() => {
      if (f.beat()) send({ t: 'beat' });
    }, opts.bounds.beatMs);
    opts.onIdle?.(true);
    let out = '';
    try {
      const exitCode = await dispatch({
        env: req.env,
        stdin: req.stdin,
        stdout: (t) => (out += t),
        runner: fencedRunner(requestRunner(opts.runner, opts.ipamRunner, req.env), f),
        ovsdb: fencedOvsdb(opts.ovsdb, f),
        ipamVersions: opts.ipamVersions,
        recentSteps: opts.recentSteps,
      });
      // Work the fence stopped half way is no answer: the executable redoes it standalone.
      if (f.blocked) {
        opts.log('fenced', { verb, reason: f.tripped, ms: opts.now() - started });
        return refuse(true, f.tripped!);
      }
      opts.log('served', { verb, exitCode, ms: opts.now() - started });
      send({ t: 'reply', exitCode, stdout: out });
      socket.end();
    } finally {
      clearInterval(beats);
      opts.onIdle?.(false);
    }
  }
}
