// The manifests cannot run here (no kubelet, no running systemd), but what Warren's own
// programs read from them can be checked: the agent config in the ConfigMap is one the
// agent accepts, and systemd's own checker accepts the agent's unit.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_RESIDENT_SOCKET } from '../../lib/cni-resident.js';
import { execRunner } from '../../lib/runner.js';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseAgentConfig } from '../../node-agent/config.js';
import { renderConflist } from '../../configgen/conflist.js';
import { carvePool } from '../../configgen/pool.js';

const docs = YAML.parseAllDocuments(readFileSync('daemonset/warren.yaml', 'utf8')).map((d) => d.toJS() as Record<string, any>);

describe('daemonset/warren.yaml', () => {
  it('parses as YAML, every document', () => {
    expect(docs.length).toBeGreaterThan(3);
  });

  it('carries an agent config the agent accepts, with the node name from the downward API', () => {
    const cm = docs.find((d) => d?.kind === 'ConfigMap');
    const config = parseAgentConfig('warren-config/agent.yaml', cm!.data['agent.yaml'], { NODE_NAME: 'worker-1' });
    expect(config.nodeName).toBe('worker-1');
    // Each node's own expiring credential, from etcd (warren-turn-issuer writes it): no password on the node.
    expect(config.turn).toMatchObject({ issued: true });
    expect(config.turn?.passwordFile).toBeUndefined();
    const ds = docs.find((d) => d?.kind === 'DaemonSet');
    const agent = ds!.spec.template.spec.containers.find((c: { name: string }) => c.name === 'agent');
    expect(agent.command).toEqual(['/warren/bin/warren-agent', 'run', '--config', '/etc/warren/agent.yaml']);
    expect(agent.env.some((e: { name: string; valueFrom?: unknown }) => e.name === 'NODE_NAME' && e.valueFrom)).toBe(true);
  });

  it('gives configgen and the agent the node\'s own etcd credential, from the host\'s /etc/warren/etcd: no Secret on the nodes', () => {
    const pod = docs.find((d) => d?.kind === 'DaemonSet')!.spec.template.spec;
    expect(pod.volumes.find((v: { name: string }) => v.name === 'etcd-certs')).toEqual({ name: 'etcd-certs', hostPath: { path: '/etc/warren/etcd', type: 'Directory' } });
    // Neither the TURN secret, nor a TURN password, nor a shared etcd identity.
    expect(pod.volumes.filter((v: Record<string, unknown>) => v.secret || v.projected).map((v: { name: string }) => v.name)).toEqual([]);
    const mounted = (name: string) => [...pod.initContainers, ...pod.containers].find((c: { name: string }) => c.name === name)
      .volumeMounts.find((m: { name: string }) => m.name === 'etcd-certs');
    for (const name of ['configgen', 'agent']) expect(mounted(name)).toEqual({ name: 'etcd-certs', mountPath: '/etc/warren/etcd', readOnly: true });
    const configgen = pod.initContainers.find((c: { name: string }) => c.name === 'configgen');
    expect((configgen.args as string[]).filter((a) => a.startsWith('--etcd-c') || a.startsWith('--etcd-k')))
      .toEqual(['--etcd-cacert=/etc/warren/etcd/ca.crt', '--etcd-cert=/etc/warren/etcd/tls.crt', '--etcd-key=/etc/warren/etcd/tls.key']);
    const cm = docs.find((d) => d?.kind === 'ConfigMap');
    const config = parseAgentConfig('warren-config/agent.yaml', cm!.data['agent.yaml'], { NODE_NAME: 'worker-1' });
    expect(config.etcd).toMatchObject({ caFile: '/etc/warren/etcd/ca.crt', certFile: '/etc/warren/etcd/tls.crt', keyFile: '/etc/warren/etcd/tls.key' });
  });

  it('rolls out by surging: the new pod starts beside the old one, which goes once the new agent answers', () => {
    const ds = docs.find((d) => d?.kind === 'DaemonSet')!;
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    // With hostNetwork every declared port is a host port: the scheduler would never place
    // the surge pod beside the old one, and the rollout would stop at the first node.
    const containers = [...pod.initContainers, ...pod.containers] as { name: string; ports?: unknown[] }[];
    expect(containers.filter((c) => c.ports?.length).map((c) => c.name)).toEqual([]);
    const agent = pod.containers.find((c: { name: string }) => c.name === 'agent');
    expect(agent.startupProbe.exec.command).toEqual(['/warren/bin/warren-agent', 'status', '--config', '/etc/warren/agent.yaml']);
    expect(agent.readinessProbe).toBeUndefined(); // probed until started, never after: each probe starts a Node process
  });
});

describe('warren.yaml: the resident CNI server', () => {
  const pod = docs.find((d) => d?.kind === 'DaemonSet')!.spec.template.spec;
  const server = pod.containers.find((c: { name: string }) => c.name === 'cni-server');
  const hostPathOf = (volume: string): string => pod.volumes.find((v: { name: string }) => v.name === volume).hostPath.path;

  it('listens where the plugin looks by default, on a directory of the host', () => {
    expect(server.command).toEqual(['/warren/bin/warren', 'cni-server', '--socket', DEFAULT_RESIDENT_SOCKET]);
    const run = server.volumeMounts.find((m: { mountPath: string }) => m.mountPath === dirname(DEFAULT_RESIDENT_SOCKET));
    expect(hostPathOf(run.name)).toBe(dirname(DEFAULT_RESIDENT_SOCKET));
  });

  it('sees the host\'s netns files (also those pinned after it started), CNI_PATH and host-local\'s store at the host\'s paths', () => {
    const mounts = server.volumeMounts as { name: string; mountPath: string; mountPropagation?: string }[];
    for (const path of ['/var/run/netns', '/opt/cni/bin', '/var/lib/cni', '/run/openvswitch']) {
      const m = mounts.find((x) => x.mountPath === path);
      expect(m, path).toBeDefined();
      expect(hostPathOf(m!.name)).toBe(path);
    }
    expect(mounts.find((x) => x.mountPath === '/var/run/netns')!.mountPropagation).toBe('HostToContainer');
  });
});

describe('warren.yaml: the Deployment warren-turn-issuer', () => {
  const deployment = docs.find((d) => d?.kind === 'Deployment' && d.metadata.name === 'warren-turn-issuer')!;
  const pod = deployment.spec.template.spec;
  const issuer = pod.containers[0];

  it('runs one issuer on a control-plane node, on the host network, before any node is Ready', () => {
    expect(deployment.metadata.namespace).toBe('warren-system');
    expect(deployment.spec.replicas).toBe(1);
    expect(pod.containers).toHaveLength(1);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('Default');
    expect(pod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    const tolerated = (pod.tolerations as { key: string; effect: string }[]).map((t) => `${t.key}:${t.effect}`);
    expect(tolerated).toEqual(['node-role.kubernetes.io/control-plane:NoSchedule', 'node.kubernetes.io/not-ready:NoSchedule']);
  });

  it('runs warren-configgen admin turn-issuer with the secret file, the ConfigMap\'s etcd endpoints and its own certificate', () => {
    expect([...issuer.command, ...issuer.args]).toEqual(['/warren/bin/warren-configgen', 'admin', 'turn-issuer',
      '--turn-secret-file=/etc/warren/turn/secret', '--turn-ttl=12h', '--etcd-endpoints=$(WARREN_ETCD_ENDPOINTS)',
      '--etcd-cacert=/etc/warren/etcd/ca.crt', '--etcd-cert=/etc/warren/etcd/tls.crt', '--etcd-key=/etc/warren/etcd/tls.key']);
    expect(issuer.env).toEqual([{ name: 'WARREN_ETCD_ENDPOINTS', valueFrom: { configMapKeyRef: { name: 'warren-config', key: 'etcd-endpoints' } } }]);
  });

  it('mounts the two Secrets read-only, 0400, each file by name', () => {
    expect(issuer.volumeMounts).toEqual([
      { name: 'turn-secret', mountPath: '/etc/warren/turn', readOnly: true },
      { name: 'etcd-certs', mountPath: '/etc/warren/etcd', readOnly: true },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'turn-secret', secret: { secretName: 'warren-turn', defaultMode: 0o400, items: [{ key: 'secret', path: 'secret' }] } },
      { name: 'etcd-certs', secret: { secretName: 'warren-turn-issuer-etcd', defaultMode: 0o400,
        items: ['ca.crt', 'tls.crt', 'tls.key'].map((f) => ({ key: f, path: f })) } },
    ]);
    // fsGroup would make the Secret's files group-readable (0440): the issuer refuses those.
    expect(pod.securityContext?.fsGroup).toBeUndefined();
  });

  it('holds no privilege: no API token, no capability, a read-only root', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBeUndefined();
    expect(issuer.securityContext).toEqual({ runAsUser: 0, privileged: false, allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
  });
});

describe('install-cni', () => {
  // The bug a first real kubelet found: the binary was installed as warren-cni while the
  // conflist asks for "warren", and every pod failed. Run the init container's own script
  // with its absolute paths moved under a temporary root.
  it('installs a file for every plugin type the conflist names, and no half-written one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'warren-install-cni-'));
    try {
      const ds = docs.find((d) => d?.kind === 'DaemonSet');
      const init = ds!.spec.template.spec.initContainers.find((c: { name: string }) => c.name === 'install-cni');
      const script = (init.command as string[])[2]!.replaceAll('/host/', `${root}/host/`).replaceAll('/warren/bin/', `${root}/image/`)
        .replaceAll('/warren/cni/', `${root}/image-cni/`).replaceAll('/usr/lib/cni/', `${root}/image/`);
      mkdirSync(join(root, 'image'));
      mkdirSync(join(root, 'image-cni'));
      mkdirSync(join(root, 'host/opt/cni/bin'), { recursive: true });
      for (const f of ['warren', 'host-local', 'portmap']) writeFileSync(join(root, 'image', f), `#!/bin/sh\n# ${f}\n`);
      writeFileSync(join(root, 'image-cni', 'warren'), '#!/bin/sh\n# the shim\n');
      const r = await execRunner('sh', ['-ec', script]);
      expect(r.exitCode).toBe(0);
      const pool = carvePool({ podCIDR: '10.244.0.0/16', nodeBits: 8, hostCIDR: '10.10.0.0/16' });
      const conflist = renderConflist({ allocation: { node: 'n', index: 1, podSubnet: '10.244.1.0/24', gateway: '10.244.1.1', hostAddress: '10.10.0.1' },
        pool, bridge: 'warren0', mtu: 1420, logFile: '/var/log/warren/cni.log', ovsdb: undefined, ipamDataDir: undefined });
      const types = (conflist.plugins as { type: string; ipam?: { type: string } }[]).flatMap((p) => [p.type, ...(p.ipam ? [p.ipam.type] : [])]);
      const installed = (await execRunner('ls', ['-A', join(root, 'host/opt/cni/bin')])).stdout.trim().split('\n').sort();
      // The shim as the type's file, the Node executable beside it as the plugin it falls back on.
      expect(installed).toEqual([...new Set([...types, 'warren-cni'])].sort());
      expect(readFileSync(join(root, 'host/opt/cni/bin/warren'), 'utf8')).toContain('# the shim');
      expect(readFileSync(join(root, 'host/opt/cni/bin/warren-cni'), 'utf8')).toContain('# warren');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('daemonset/warren-agent.service', () => {
  const unit = readFileSync('daemonset/warren-agent.service', 'utf8');
  const setting = (key: string) => unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

  it('stops only the agent, so that wireguard-go outlives a restart, and restarts it always', () => {
    expect(setting('KillMode')).toEqual(['process']);
    expect(setting('Restart')).toEqual(['always']);
    expect(setting('ExecStart')).toEqual(['/usr/local/bin/warren-agent run --config /etc/warren/agent.yaml']);
  });

  it('passes systemd-analyze verify with the built agent in place of the installed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-unit-'));
    try {
      const file = join(dir, 'warren-agent.service');
      writeFileSync(file, unit.replaceAll('/usr/local/bin/warren-agent', resolve('dist/bin/warren-agent')));
      const r = await execRunner('systemd-analyze', ['verify', file], { allowFailure: true });
      expect(r.stderr, r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
