// Real wireguard-go on NAT lab hosts, set up by the agent's own code (key, backend,
// overlay reconcile). Each host gets overlay address 10.10.0.N and a placeholder pod
// subnet 10.244.N.0/24 (the plan wants one; nothing lives there). Everything started here
// is stopped by destroy(), which must run before the lab deletes the namespaces.
import type { ChildProcess } from 'node:child_process';
import { perTest } from '../../../helpers/per-test.js';
import { spawnIn, type Spawned } from '../../../helpers/spawn-in.js';
export type { Spawned };
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatEndpoint, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import { reconcileOverlay } from '../../../../node-agent/overlay/reconcile.js';
import type { OverlayInput } from '../../../../node-agent/overlay/plan.js';
import { openBackend, type WireguardBackend } from '../../../../node-agent/wireguard/backend.js';
import { ensureNodeKey, type NodeKey } from '../../../../node-agent/wireguard/keys.js';
import { readStatus } from '../../../../node-agent/wireguard/status.js';
import { WireguardGoBackend } from '../../../../node-agent/wireguard/wireguard-go-backend.js';
import type { Site } from '../../../helpers/natlab.js';
import type { Netns } from '../../../helpers/netns.js';
import { uniqueName } from '../../../helpers/netns.js';
import { teardownWireguard } from '../../../helpers/wireguard-teardown.js';

export const WG_PORT = 51820;
export const PROBE_PORT = 51821;

export interface WgHost {
  site: Site;
  /** Unique on the machine: wireguard-go's control socket path is shared by all namespaces. */
  ifname: string;
  key: NodeKey;
  overlayAddress: string;
  podSubnet: string;
  backend: WireguardBackend;
}

export class WgHosts {
  readonly hosts: WgHost[] = [];
  private readonly pids = new Set<number>();
  private readonly children: ChildProcess[] = [];

  private constructor(private readonly dir: string) {}

  static async create(): Promise<WgHosts> {
    return new WgHosts(await mkdtemp(join(tmpdir(), 'warren-traversal-')));
  }

  /** wireguard-go on the site's host, listening on WG_PORT, no peers yet. */
  async add(site: Site): Promise<WgHost> {
    const n = this.hosts.length + 1;
    const ifname = uniqueName('wg');
    const key = await ensureNodeKey(join(this.dir, ifname, 'wireguard.key'));
    const backend = await openBackend({
      ifname, runner: site.host.runner, netnsPath: site.host.path, prefer: 'wireguard-go', logPath: join(this.dir, `${ifname}.log`),
    });
    const host: WgHost = { site, ifname, key, overlayAddress: `10.10.0.${n}`, podSubnet: `10.244.${n}.0/24`, backend };
    this.hosts.push(host);
    await backend.ensureInterface();
    if (backend instanceof WireguardGoBackend && backend.pid !== undefined) this.pids.add(backend.pid);
    await this.configure(host, []);
    return host;
  }

  /** Reconciles `h` to have exactly `peers`, each with the given endpoint or none (learned from its packets). */
  async configure(h: WgHost, peers: readonly { host: WgHost; endpoint?: Endpoint }[]): Promise<void> {
    const input: OverlayInput = {
      self: {
        publicKey: h.key.publicKey, privateKeyPath: h.key.privateKeyPath, hostAddress: h.overlayAddress, hostCidr: '10.10.0.0/16',
        podSubnet: h.podSubnet, podCidr: '10.244.0.0/16', listenPort: WG_PORT, mtu: 1420,
      },
      peers: peers.map((p) => ({
        publicKey: p.host.key.publicKey, hostAddress: p.host.overlayAddress, podSubnet: p.host.podSubnet,
        ...(p.endpoint ? { endpoint: formatEndpoint(p.endpoint) } : {}),
      })),
    };
    const r = await reconcileOverlay(h.backend, h.site.host.runner, input);
    if (r.rejected.length > 0) throw new Error(`peers rejected: ${JSON.stringify(r.rejected)}`);
  }

  /** The endpoint `h`'s WireGuard holds for `peer` ("ip:port"), as `wg show` reports it. */
  async endpointOf(h: WgHost, peer: WgHost): Promise<string | undefined> {
    return (await readStatus(h.site.host.runner, h.ifname)).find((p) => p.publicKey === peer.key.publicKey)?.endpoint;
  }

  async handshakeDone(h: WgHost, peer: WgHost): Promise<boolean> {
    return (await readStatus(h.site.host.runner, h.ifname)).find((p) => p.publicKey === peer.key.publicKey)?.latestHandshake !== undefined;
  }

  /** A process inside `ns` whose output the test reads while it runs; killed by destroy(). */
  spawnIn(ns: Netns, file: string, args: readonly string[]): Spawned {
    const spawned = spawnIn(ns, file, args);
    this.children.push(spawned.child);
    return spawned;
  }

  /** Stops children and every wireguard-go (wireguard-teardown.ts), then removes the keys. */
  async destroy(): Promise<void> {
    try {
      await teardownWireguard({
        children: this.children, backends: this.hosts.map((h) => h.backend), daemonPids: this.pids, signal: 'SIGKILL', ifnames: this.hosts.map((h) => h.ifname),
      });
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

/** WgHosts for each test of the calling file; register after useNatLab() so they go first. */
export function useWgHosts(): () => WgHosts {
  return perTest('the WireGuard hosts', () => WgHosts.create(), (hosts) => hosts.destroy());
}
