// The resident server's programs, started by warren-spawner (spawner.c) instead of by Node:
// Node forks from the server's own thread and waits there for each child's exec, which
// under a burst of ADDs was most of the server's time. One spawner per server, over its
// stdin and stdout; each call is a frame with an id, answered when the program is done.
// The frames are spawner.c's; the outcome is judged by settle() like any runner's.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CommandError } from '../../lib/errors.js';
import { childEnv, describeCommand, settle, type RunOptions, type Runner, type RunResult } from '../../lib/runner.js';

const KIND_EXITED = 0;
const KIND_KILLED = 1;

interface Pending {
  file: string;
  args: readonly string[];
  options: RunOptions;
  resolve: (r: RunResult) => void;
  reject: (e: unknown) => void;
}

/** One request frame (spawner.c): len id timeoutMs argc envc, argv and env NUL-terminated, input. */
export function encodeRequest(id: number, argv: readonly string[], env: Record<string, string>, input: string, timeoutMs = 0): Buffer {
  const strings = [...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].map((s) => `${s}\0`).join('');
  const body = Buffer.concat([Buffer.from(strings), Buffer.from(input)]);
  const head = Buffer.alloc(20);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt32LE(timeoutMs, 8);
  head.writeUInt32LE(argv.length, 12);
  head.writeUInt32LE(Object.keys(env).length, 16);
  return Buffer.concat([head, body]);
}

export interface SpawnerReply {
  id: number;
  kind: number;
  value: number;
  stdout: string;
  stderr: string;
}

/** Splits whole response frames off `buffer`; what remains is an incomplete frame. */
export function decodeReplies(buffer: Buffer): { replies: SpawnerReply[]; rest: Buffer } {
  const replies: SpawnerReply[] = [];
  let at = 0;
  while (buffer.length - at >= 4) {
    const len = buffer.readUInt32LE(at);
    if (buffer.length - at - 4 < len) break;
    const f = at + 4;
    const outLen = buffer.readUInt32LE(f + 12);
    replies.push({
      id: buffer.readUInt32LE(f), kind: buffer.readUInt32LE(f + 4), value: buffer.readUInt32LE(f + 8),
      stdout: buffer.subarray(f + 16, f + 16 + outLen).toString(), stderr: buffer.subarray(f + 16 + outLen, f + len).toString(),
    });
    at = f + len;
  }
  return { replies, rest: buffer.subarray(at) };
}

export class Spawner {
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  private buffered: Buffer = Buffer.alloc(0);
  private gone: string | undefined;

  private constructor(private readonly child: ChildProcess, private readonly onGone: (why: string) => void) {
    child.stdout!.on('data', (d: Buffer) => this.receive(d));
    child.stdin!.on('error', () => {}); // its exit is reported below
    child.on('error', (e) => this.lost(`could not start: ${e.message}`));
    // 'close', not 'exit': replies still in the pipe are read first, and settle their calls.
    child.on('close', (code, signal) => this.lost(`exited (${signal ?? code})`));
  }

  /** The spawner at `path`, or undefined when there is none (a build without it: Node spawns). */
  static start(path: string, onGone: (why: string) => void): Spawner | undefined {
    if (!existsSync(path)) return undefined;
    return new Spawner(spawn(path, [String(process.pid)], { stdio: ['pipe', 'pipe', 'inherit'] }), onGone);
  }

  get alive(): boolean {
    return this.gone === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * A runner through the spawner; `via` (setpriv with options) execs the command, as in
   * spawnRunnerVia. Once the spawner is gone, calls go to `fallback`.
   */
  runner(fallback: Runner, via: readonly string[] = []): Runner {
    return (file, args, options = {}) => {
      if (this.gone !== undefined) return fallback(file, args, options);
      return new Promise((resolve, reject) => {
        const id = this.next;
        this.next = id >= 0xffffffff ? 1 : id + 1;
        this.pending.set(id, { file, args, options, resolve, reject });
        this.child.stdin!.write(encodeRequest(id, [...via, file, ...args], childEnv(options), options.input ?? '', options.timeoutMs ?? 0));
      });
    };
  }

  /** A stop the server asked for: its end is no loss to report. */
  stop(): void {
    this.gone ??= 'stopped';
    this.child.stdin!.end();
  }

  private receive(data: Buffer): void {
    const { replies, rest } = decodeReplies(this.buffered.length ? Buffer.concat([this.buffered, data]) : data);
    this.buffered = rest;
    for (const r of replies) {
      const p = this.pending.get(r.id);
      if (!p) continue;
      this.pending.delete(r.id);
      try {
        p.resolve(settle(p.file, p.args, p.options, {
          exitCode: r.kind === KIND_EXITED ? r.value : undefined,
          stdout: r.stdout,
          stderr: r.kind === KIND_KILLED && !r.stderr ? `killed by signal ${r.value}` : r.stderr,
        }));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  private lost(why: string): void {
    if (this.gone !== undefined) return;
    this.gone = why;
    // A spawner that stops on its own kills what it started; one killed leaves its programs
    // to finish alone, but the IPAM's die with it (setpriv --pdeathsig). Either way those
    // calls fail like a killed program, and the verb's rollback runs as for any failure.
    for (const p of this.pending.values()) p.reject(new CommandError(describeCommand(p.file, p.args), undefined, `warren-spawner ${why}`));
    this.pending.clear();
    this.onGone(why);
  }
}
