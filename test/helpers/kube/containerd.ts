// Debian's containerd 1.6, one per node, on the node's own /run and /var/lib/containerd.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../sh.js';
import type { Daemon, KubeNode } from './kube-node.js';

export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';

/**
 * Pure: containerd's config. `restrict_oom_score_adj`: this VM lacks CAP_SYS_RESOURCE and
 * every sandbox fails without it (TESTBED.md). The CNI directories are the defaults the
 * DaemonSet's hostPath volumes write to.
 */
export function containerdConfig(sandboxImage: string): string {
  return `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "${CONTAINERD_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;
}

export async function startContainerd(node: KubeNode, sandboxImage: string): Promise<Daemon> {
  writeFileSync(join(node.root, 'etc-containerd', 'config.toml'), containerdConfig(sandboxImage));
  const d = node.spawn('containerd', 'containerd', ['--config', '/etc/containerd/config.toml']);
  await waitFor(`${node.name}'s containerd`, async () => {
    if (!d.running()) throw new Error(`${node.name}'s containerd exited:\n${node.logOf('containerd').slice(-2000)}`);
    return (await node.exec('ctr', ['--address', CONTAINERD_SOCKET, 'version'], { allowFailure: true })).exitCode === 0;
  }, 20_000, 100);
  return d;
}

/** Imports OCI archives into the node's k8s.io namespace (where the kubelet's images live). */
export async function importImages(node: KubeNode, archives: readonly string[]): Promise<void> {
  for (const a of archives) {
    await node.exec('ctr', ['--address', CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'import', '--all-platforms', a]);
  }
}
