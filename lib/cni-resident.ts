// The contract between the CNI executable (cni/shim/shim.c, the `warren` runtimes execute)
// and the resident CNI server (`warren cni-server`): where the socket is, how long the
// executable waits, and the messages, one JSON object per line (JSON.stringify escapes every
// newline inside a string). The shim's constants must match these (a unit test reads both).
//
// The executable sends one request. A server in another mount namespace first asks what the
// paths the verb relies on are for the executable (`stat`, answered by `views`). The server
// then answers `beat` at once and then every
// BEAT_MS while it works, and finally `reply` (the verb's stdout and exit status) or
// `refused` (the executable does the work itself). Both sides read the same bounds:
// the server stops touching the node once it has gone FENCE_MS without a beat, half the
// executable's SILENCE_MS, so that a server that was stopped (SIGSTOP, a frozen node)
// does nothing more by the time the executable has given up and works standalone.

export const DEFAULT_RESIDENT_SOCKET = '/run/warren/cni.sock';

/**
 * What the shim tells the standalone plugin it execs instead: why the server did not answer
 * (logged), and that the server may have begun this ADD (the plugin then runs DEL first).
 */
export const FALLBACK_ENV = 'WARREN_CNI_FALLBACK';
export const CLEAR_FIRST_ENV = 'WARREN_CNI_CLEAR_FIRST';

export const RESIDENT_BOUNDS = {
  /** connect(2) to a unix socket answers at once (accepted into the backlog, ENOENT, ECONNREFUSED): anything longer is a stuck node. */
  connectMs: 25,
  /** The server beats this often while a request runs. */
  beatMs: 100,
  /**
   * The server refuses to act once its last beat is older than this (or the request older
   * than this when it arrives). On 2 cores with a load average of 20, 500 ms was too short:
   * the server fenced or refused 258 of 2,700 calls of the bench that it was serving fine.
   */
  fenceMs: 1500,
  /** The executable gives up on a server it has heard nothing from for this long: what a hung server costs a pod start. */
  silenceMs: 3000,
  /** And on one that beats but has not answered after this long (a verb stuck on a long-lived connection). */
  totalMs: 60_000,
} as const;

export type ResidentBounds = { [K in keyof typeof RESIDENT_BOUNDS]: number };

/** Requests larger than this are refused: a config of many MiB is better parsed by the executable that received it. */
export const MAX_REQUEST_BYTES = 16 << 20;

export interface ResidentRequest {
  /** The executable's whole environment: the server runs the verb, and its IPAM and tools, under it. */
  env: Record<string, string>;
  stdin: string;
  /** Wall-clock ms when sent: a request that waited in the backlog past FENCE_MS may have been given up. */
  sentAt: number;
  /** The executable's mount namespace (readlink /proc/self/ns/mnt). */
  mntns: string;
}

/**
 * From another mount namespace, what the paths the verb relies on are for the executable
 * ("dev:ino" of the path or its nearest existing parent, lib/path-identity.ts, for the paths
 * of sharedPaths): the server works only where it sees the same files.
 */
export interface ResidentViews {
  t: 'views';
  views: Record<string, string>;
}

export const HOST_LOCAL_DATA_DIR = '/var/lib/cni/networks';

/**
 * The paths a verb's work depends on: the pod's netns, the directories of CNI_PATH (the
 * IPAM plugin), host-local's store of the network. Pure: the executable and the server compute
 * the same list from the same request.
 */
export function sharedPaths(env: Record<string, string | undefined>, config: unknown): string[] {
  const paths = (env.CNI_PATH ?? '').split(':').filter((p) => p.startsWith('/'));
  if (env.CNI_NETNS?.startsWith('/')) paths.push(env.CNI_NETNS);
  const c = config as { name?: unknown; ipam?: { type?: unknown; dataDir?: unknown } } | null;
  if (c?.ipam?.type === 'host-local') {
    const dir = typeof c.ipam.dataDir === 'string' && c.ipam.dataDir.startsWith('/') ? c.ipam.dataDir : HOST_LOCAL_DATA_DIR;
    // host-local keeps a network's addresses in a directory named after it.
    paths.push(typeof c.name === 'string' && /^[^/]+$/.test(c.name) && c.name !== '..' ? `${dir}/${c.name}` : dir);
  }
  return paths;
}

export type ResidentMessage =
  | { t: 'stat'; paths: string[] }
  | { t: 'beat' }
  | { t: 'reply'; exitCode: number; stdout: string }
  /** `started`: whether the server may have changed the node for this request before it stopped. */
  | { t: 'refused'; started: boolean; reason: string };

export function encodeLine(message: ResidentRequest | ResidentViews | ResidentMessage): string {
  return JSON.stringify(message) + '\n';
}

/** Splits received text into lines; `limit` bounds what may pile up without a newline. */
export class LineDecoder {
  private buffer = '';
  constructor(private readonly limit = MAX_REQUEST_BYTES) {}

  push(text: string): string[] {
    this.buffer += text;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop()!;
    if (this.buffer.length > this.limit) throw new RangeError(`a line over ${this.limit} bytes`);
    return lines.filter((l) => l.length > 0);
  }
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

export function parseRequest(line: string): ResidentRequest | undefined {
  try {
    const r = JSON.parse(line) as Partial<ResidentRequest>;
    if (!isStringRecord(r.env) || typeof r.stdin !== 'string' || typeof r.sentAt !== 'number' || typeof r.mntns !== 'string') return undefined;
    return { env: r.env, stdin: r.stdin, sentAt: r.sentAt, mntns: r.mntns };
  } catch {
    return undefined;
  }
}

export function parseViews(line: string): Record<string, string> | undefined {
  try {
    const v = JSON.parse(line) as Partial<ResidentViews>;
    return v.t === 'views' && isStringRecord(v.views) ? v.views : undefined;
  } catch {
    return undefined;
  }
}

// sun_path holds 108 bytes with its terminating NUL, and the server binds first to the
// path plus ".PID" (cni/resident/main.ts): room left for that.
export const MAX_SOCKET_PATH = 96;

/** Why a value cannot be the socket's path, or undefined when it can. */
export function residentSocketProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || !v.startsWith('/')) return 'must be an absolute path';
  if (Buffer.byteLength(v) > MAX_SOCKET_PATH) return `must be at most ${MAX_SOCKET_PATH} bytes (a unix socket's limit)`;
  if (v.includes('\0')) return 'must not contain NUL';
  return undefined;
}
