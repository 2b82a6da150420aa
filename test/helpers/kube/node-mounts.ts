// What makes one emulated host a Kubernetes node of its own: a mount namespace, next to its
// network namespace, in which the paths that kubelet, containerd, kubeadm and the CNI
// hard-code (and that no flag moves, see TESTBED.md) are the node's own directories.
//
// Shared with the machine, and why: the kernel (one kernel for every emulated node), the
// cgroup hierarchy (each kubelet gets its own cgroupRoot instead), /dev (tun), the binaries
// in /usr, and /tmp.

/** Host paths every node sees as its own directory; the kubelet and runtimes write here. */
export const NODE_PATHS = [
  '/etc/kubernetes', // kubeadm: manifests, kubeconfigs, PKI
  '/etc/containerd',
  '/etc/openvswitch', // the node's own OVS database
  '/etc/cni/net.d', // the conflist containerd watches
  '/etc/warren', // the systemd-style agent's config
  '/etc/default', // /etc/default/kubelet: the node's kubelet flags (KUBELET_EXTRA_ARGS)
  '/opt/cni/bin', // install-cni's target: host-local, portmap, warren
  '/var/lib/kubelet', // device-plugins/kubelet.sock and pod volumes are hard-coded here
  '/var/lib/containerd',
  '/var/lib/cni', // cached results, host-local's leases
  '/var/lib/etcd', // kubeadm's stacked etcd (the control-plane node)
  '/var/lib/warren', // node.json, WireGuard keys
  '/var/log', // /var/log/pods, /var/log/containers, /var/log/warren
  '/usr/libexec/kubernetes', // kubelet's volume plugin dir
] as const;

/** `/var/lib/kubelet` -> `var-lib-kubelet`: the node directory that stands for a host path. */
export function nodeDirFor(hostPath: string): string {
  return hostPath.replace(/^\//, '').replaceAll('/', '-');
}

/**
 * Pure: the shell script that, run inside the node's network namespace by
 * `unshare --mount=FILE --propagation private`, makes its mount namespace. /run is a fresh
 * tmpfs (containerd's sockets, pod netns files, OVS, wireguard-go's control sockets, the
 * agent's socket: all per node). /sys is mounted again so that /sys/class/net shows the
 * node's own interfaces, with the machine's cgroup tree bound back under it (runc needs it).
 */
export function mountScript(nodeRoot: string): string {
  const lines = ['set -eu', `cg=${nodeRoot}/.cgroup`, 'mkdir -p "$cg"', 'mount --rbind /sys/fs/cgroup "$cg"',
    'mount -t sysfs sysfs /sys', 'mount --rbind "$cg" /sys/fs/cgroup', 'umount -l "$cg"', 'mount -t tmpfs -o mode=0755 tmpfs /run'];
  for (const p of NODE_PATHS) {
    const dir = `${nodeRoot}/${nodeDirFor(p)}`;
    lines.push(`mkdir -p ${dir}`, `mount --bind ${dir} ${p}`);
  }
  // Every mount shared, as systemd makes a host's: a container that mounts /var/run/netns
  // HostToContainer (the resident CNI server) then sees the pods' netns pinned after it
  // started. containerd refuses that mount when the mount holding the path is private, and
  // it looks /var/run up without following the link to /run: "/" is the one that counts.
  lines.push('mount --make-rshared /');
  return lines.join('\n');
}
