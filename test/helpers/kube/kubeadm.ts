// kubeadm init and join on emulated nodes. The init config is the file users get
// (daemonset/kubeadm-config.yaml) with only what the emulated hosts need added: a
// token known in advance, the node's name and cgroup root, cgroupfs and cgroup v1, the
// preflight checks that cannot pass in a network namespace, the etcd image built here.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import type { KubeNode } from './kube-node.js';
import { CONTAINERD_SOCKET } from './containerd.js';

export const KUBEADM_CONFIG = resolve('daemonset/kubeadm-config.yaml');
export const KUBERNETES_VERSION = process.env.WARREN_K8S_VERSION ?? 'v1.37.2';
/** A bootstrap token fixed in advance, so that joins need no output parsing. */
export const BOOTSTRAP_TOKEN = 'warren.0123456789abcdef';

/**
 * Checks the emulated hosts fail for reasons of the machine, not of the cluster:
 * SystemVerification (cgroup v1 here), the bridge netfilter sysctl (no br_netfilter in a
 * network namespace), swap.
 */
export const IGNORED_PREFLIGHT = ['SystemVerification', 'FileContent--proc-sys-net-bridge-bridge-nf-call-iptables', 'Swap'];

type Doc = Record<string, unknown> & { kind: string };

/** Pure: the init config for `node`, advertised at its host-overlay address. */
export function initConfig(shipped: string, nodeName: string, hostAddress: string, etcdImage: string): string {
  const docs = YAML.parseAllDocuments(shipped.replaceAll('HOST_ADDRESS', hostAddress)).map((d) => d.toJS() as Doc);
  const byKind = (kind: string): Doc => {
    const doc = docs.find((d) => d.kind === kind);
    if (!doc) throw new Error(`${KUBEADM_CONFIG} has no ${kind}`);
    return doc;
  };
  const init = byKind('InitConfiguration');
  init.bootstrapTokens = [{ token: BOOTSTRAP_TOKEN, ttl: '2h' }];
  const reg = init.nodeRegistration as Record<string, unknown>;
  Object.assign(reg, { name: nodeName, criSocket: `unix://${CONTAINERD_SOCKET}`, ignorePreflightErrors: IGNORED_PREFLIGHT });
  const cluster = byKind('ClusterConfiguration');
  cluster.kubernetesVersion = KUBERNETES_VERSION;
  // The etcd built here, not the one kubeadm would pull: its own tag.
  const at = etcdImage.lastIndexOf(':');
  cluster.etcd = { local: { imageRepository: etcdImage.slice(0, etcdImage.lastIndexOf('/', at)), imageTag: etcdImage.slice(at + 1) } };
  docs.push({ apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration', ...KUBELET_FOR_EMULATED_HOSTS });
  const proxy = byKind('KubeProxyConfiguration');
  // nf_conntrack_max is not writable from a network namespace: leave the sysctls alone.
  proxy.conntrack = { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' };
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

/** Every kubelet of the emulated cluster (the kubelet-config ConfigMap is cluster-wide). */
const KUBELET_FOR_EMULATED_HOSTS = {
  cgroupDriver: 'cgroupfs',
  failCgroupV1: false,
  failSwapOn: false,
  // Disk pressure must not depend on how full the machine running the tests is.
  evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
  imageGCHighThresholdPercent: 100,
};

/** /etc/default/kubelet: what a user sets per node (the README's step), plus its cgroup root. */
export function writeKubeletDefaults(node: KubeNode, hostAddress: string): void {
  writeFileSync(join(node.root, 'etc-default', 'kubelet'),
    `KUBELET_EXTRA_ARGS="--node-ip=${hostAddress} --cgroup-root=${node.cgroupRoot}"\n`);
}

export async function kubeadmInit(node: KubeNode, hostAddress: string, etcdImage: string, path: string): Promise<void> {
  const config = join(node.root, 'etc-kubernetes', 'kubeadm-init.yaml');
  writeFileSync(config, initConfig(readFileSync(KUBEADM_CONFIG, 'utf8'), node.name, hostAddress, etcdImage));
  writeKubeletDefaults(node, hostAddress);
  await node.exec('kubeadm', ['init', '--config', '/etc/kubernetes/kubeadm-init.yaml', '--v=1'], { env: { PATH: path }, timeoutMs: 300_000 });
}

/** The CA hash `kubeadm join` checks: sha256 of the cluster CA's public key (DER). */
export async function caCertHash(cp: KubeNode): Promise<string> {
  const der = await cp.sh('openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | sha256sum');
  return `sha256:${der.split(' ')[0]}`;
}

/** The README's join command, word for word but for the preflight checks and the socket. */
export function joinArgs(apiServer: string, caHash: string, nodeName: string): string[] {
  return ['join', apiServer, '--token', BOOTSTRAP_TOKEN, '--discovery-token-ca-cert-hash', caHash, '--node-name', nodeName,
    '--cri-socket', `unix://${CONTAINERD_SOCKET}`, `--ignore-preflight-errors=${IGNORED_PREFLIGHT.join(',')}`];
}

export async function kubeadmJoin(node: KubeNode, hostAddress: string, apiServer: string, caHash: string, path: string): Promise<void> {
  writeKubeletDefaults(node, hostAddress);
  await node.exec('kubeadm', joinArgs(apiServer, caHash, node.name), { env: { PATH: path }, timeoutMs: 300_000 });
}
