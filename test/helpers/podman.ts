// podman as the real CNI runtime of an emulated node: its own containers.conf, CNI
// config and plugin directories and storage, run inside the node's namespace with
// nsenter (ip netns exec would remount /sys and runc would find no cgroups).
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execRunner, type RunResult } from '../../lib/runner.js';
import type { Netns } from './netns.js';
import { CNI_PATH, WARREN_CNI } from './plugin.js';
import { sh } from './sh.js';

export const TEST_IMAGE = 'localhost/warren-test:latest';

export class Podman {
  private constructor(readonly node: Netns, readonly dir: string) {}

  /** A podman for `node` that knows the given conflists (name -> conflist object). */
  static async create(node: Netns, conflists: Record<string, unknown>): Promise<Podman> {
    const dir = mkdtempSync(join(tmpdir(), 'warren-podman-'));
    for (const sub of ['plugins', 'net.d', 'rootfs/bin']) mkdirSync(join(dir, sub), { recursive: true });
    for (const p of readdirSync(CNI_PATH)) symlinkSync(join(CNI_PATH, p), join(dir, 'plugins', p));
    symlinkSync(WARREN_CNI, join(dir, 'plugins', 'warren'));
    for (const [name, conflist] of Object.entries(conflists)) {
      writeFileSync(join(dir, 'net.d', `${name}.conflist`), JSON.stringify(conflist, null, 2));
    }
    writeFileSync(join(dir, 'containers.conf'), [
      '[containers]', 'default_ulimits = []',
      '[engine]', 'runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
      '[network]', 'network_backend = "cni"', `cni_plugin_dirs = ["${dir}/plugins"]`, `network_config_dir = "${dir}/net.d"`,
      '',
    ].join('\n'));
    const podman = new Podman(node, dir);
    // A busybox image: no registry is reachable, and busybox has ping, nc and ip.
    await sh(`cp /bin/busybox ${dir}/rootfs/bin/ && for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox ${dir}/rootfs/bin/$a; done`);
    await sh(`tar -C ${dir}/rootfs -c . | podman --root ${dir}/storage --runroot ${dir}/runroot import - ${TEST_IMAGE} >/dev/null`,
      { env: { CONTAINERS_CONF: join(dir, 'containers.conf') } });
    return podman;
  }

  /** Runs podman in the node; throws on a non-zero exit unless allowFailure. */
  podman(args: readonly string[], allowFailure = false): Promise<RunResult> {
    return execRunner('nsenter', [`--net=${this.node.path}`, 'podman', '--root', `${this.dir}/storage`, '--runroot', `${this.dir}/runroot`, ...args],
      { env: { CONTAINERS_CONF: join(this.dir, 'containers.conf') }, allowFailure });
  }

  /** Starts a detached container on `network`; returns its id. */
  async run(name: string, network: string, command: readonly string[]): Promise<string> {
    const r = await this.podman(['run', '-d', '--name', name, '--network', network, '--cap-add', 'NET_RAW', TEST_IMAGE, ...command]);
    return r.stdout.trim();
  }

  async exec(name: string, command: readonly string[], allowFailure = false): Promise<RunResult> {
    return this.podman(['exec', name, ...command], allowFailure);
  }

  async destroy(): Promise<void> {
    await this.podman(['rm', '-a', '-f', '-t', '0'], true);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
