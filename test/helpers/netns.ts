// Network namespaces for tests, named uniquely per process so that parallel runs and
// leftovers from a killed run never collide.
import { execRunner, type Runner } from '../../lib/runner.js';
import { inNetns } from '../../lib/netns.js';
import { run } from './sh.js';

let counter = 0;

export function uniqueName(prefix: string): string {
  return `w${process.pid.toString(36)}${(counter++).toString(36)}${prefix}`;
}

export class Netns {
  readonly path: string;
  readonly runner: Runner;
  private constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
    this.runner = inNetns(execRunner, this.path);
  }

  /** A namespace someone else made and owns under /run/netns (a pod's, made by podman): never destroy() it. */
  static existing(path: string): Netns {
    const m = /^\/run\/netns\/([^/]+)$/.exec(path);
    if (!m) throw new Error(`${path} is not a named network namespace under /run/netns`);
    return new Netns(m[1]!);
  }

  static async create(prefix: string): Promise<Netns> {
    const ns = new Netns(uniqueName(prefix));
    await run('ip', ['netns', 'add', ns.name]);
    await run('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace, with /sys remounted for it (ip netns exec). */
  exec(file: string, args: readonly string[], options?: Parameters<Runner>[2]): ReturnType<Runner> {
    return execRunner('ip', ['netns', 'exec', this.name, file, ...args], options);
  }

  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.name], { allowFailure: true });
  }
}
