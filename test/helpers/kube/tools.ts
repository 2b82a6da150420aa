// Where the Kubernetes test tools and images are: `make kube-tools` (a step of `make test`)
// builds them once per version into a cache outside the repository and records the
// paths in dist/kube-tools.json.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { KubeTools } from './cluster.js';

export const KUBE_TOOLS_FILE = resolve('dist/kube-tools.json');

export function kubeTools(): KubeTools {
  if (!existsSync(KUBE_TOOLS_FILE)) throw new Error(`${KUBE_TOOLS_FILE} is missing: run \`make test\` (it builds the Kubernetes test tools first) or \`make kube-tools\``);
  const t = JSON.parse(readFileSync(KUBE_TOOLS_FILE, 'utf8')) as KubeTools;
  for (const f of [`${t.bin}/kubelet`, `${t.bin}/kubeadm`, `${t.bin}/kubectl`, ...t.archives]) {
    if (!existsSync(f)) throw new Error(`${f} (listed in ${KUBE_TOOLS_FILE}) is missing: run \`make kube-tools\``);
  }
  return t;
}
