// An emulated SD-EWAN hub for Warren's tests: a real strongSwan 5.9.8 charon on a public
// address of the NAT lab's internet, configured as the hub's OpenWrt CNF configures it
// (which cannot run here): SCC's IpsecSite CRs (cnf-config.ts) rendered into stroke
// ipsec.conf/ipsec.secrets by the CNF's own rules, read by strongswan-starter run as the
// CNF's procd runs it (cnf-ipsec.ts), restarted after every configuration change as the
// CNF's CRD controller does (SDEWAN.md §2.5), so adding a device drops every tunnel.
// The starter could be isolated per namespace (cnf-ipsec.ts), so nothing is translated to
// swanctl/VICI: charon reads the stroke config; vici is loaded only to read SA state.
//
// Departures forced by this machine (the kernel has no ESP and no vti/xfrm links):
// - ESP runs in charon's kernel-libipsec over a TUN device (ipsec0), not in the kernel.
//   kernel-libipsec only sends UDP-encapsulated ESP: every conn gets `forceencaps=yes`.
// - No VTI and no `mark=30`: the CNF's /etc/updown (`ip tunnel add vti_<OIP> ... key 30`,
//   then a route to the OIP over it) becomes the lab's updown script routing the OIP into
//   ipsec0, and each CNFRoute `dev vti_<hub ip>` (§2.6) becomes `dev ipsec0`. Which SA a
//   packet takes is then decided by libipsec's policies, most specific first (a device's
//   0/0 <-> OIP/32 before the hub-hub 0/0 <-> 0/0), where the CNF decides by VTI. With
//   more than one peer hub, two 0/0 <-> 0/0 policies would be ambiguous here (on the CNF
//   they collide too: one mark for all, SDEWAN.md §3).
// - The rest is cnf-config.ts's list (plugin set, routes kernel-libipsec installs anyway).
// Not emulated: the CNF's SNAT for `up-host` conns (none here), the K8s API DNAT on :6443.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatLab, Site } from '../natlab.js';
import { hubSideOfDevice, hubToHub, type Proposal } from './cnf-config.js';
import { CnfIpsec, type CnfCredentials, type IkeSaState } from './cnf-ipsec.js';

export interface HubOptions {
  /** The SCC hub name: identities are CN=hub-<name>-cert. */
  name: string;
  /** The hub certificate as SCC issues it (credentialsFromScc), with the root and overlay CAs. */
  credentials: CnfCredentials;
  /** The overlay's proposals, every one pushed to every remote as SCC does. */
  proposals: readonly Proposal[];
}

/** How a configuration change reaches charon: the CNF always restarts; reload keeps running SAs. */
export type ApplyMode = 'restart' | 'reload';

export interface Lease {
  pool: string;
  address: string;
  online: boolean;
  identity: string;
}

// The lab's /etc/updown. On `up-client` the CNF adds vti_<peer source IP> and, unless the
// peer's side is 0.0.0.0/0 (hub-hub), a route to that source IP over it, then runs
// `/etc/cnfroute check` to add the CNFRoutes waiting for the interface. ipsec0 vanishes
// with charon, so after a restart those routes come back only through this script.
const UPDOWN = (routesFile: string): string => `#!/bin/bash
# Written by the Warren lab (test/helpers/sdewan/hub.ts): the CNF's /etc/updown without VTIs.
set -o nounset
set -o errexit
PATH=/usr/sbin:/usr/bin:/sbin:/bin
case "\${PLUTO_VERB}" in
  up-client)
    if [ "\${PLUTO_PEER_CLIENT}" != "0.0.0.0/0" ]; then
      ip route replace "\${PLUTO_PEER_SOURCEIP}" dev ipsec0 src "\${PLUTO_ME}"
    fi
    while read -r dst; do
      [ -n "\${dst}" ] && ip route replace "\${dst}" dev ipsec0
    done < ${routesFile}
    ;;
  down-client)
    if [ "\${PLUTO_PEER_CLIENT}" != "0.0.0.0/0" ]; then
      ip route del "\${PLUTO_PEER_SOURCEIP}" dev ipsec0 || true
    fi
    ;;
esac
`;

export class Hub {
  /** Device name to its data OIP on this hub. */
  private readonly devices = new Map<string, string>();
  private readonly peers = new Set<Hub>();
  /** CNFRoutes SCC pushed: destinations routed into the tunnel device. */
  private readonly cnfRoutes = new Set<string>();

  private constructor(readonly name: string, readonly site: Site, private readonly cnf: CnfIpsec,
    private readonly credentials: CnfCredentials, private readonly proposals: readonly Proposal[], private readonly routesFile: string) {}

  /** A public site of the lab running the hub's ipsec service, with no remote yet (as a fresh CNF). */
  static async start(lab: NatLab, o: HubOptions): Promise<Hub> {
    const site = await lab.addSite('public');
    // The CNF routes between its tunnels.
    await site.host.runner('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    const dir = mkdtempSync(join(tmpdir(), `warren-sdewan-hub-${o.name}-`));
    const routesFile = join(dir, 'cnfroutes');
    writeFileSync(routesFile, '');
    const updown = join(dir, 'updown');
    writeFileSync(updown, UPDOWN(routesFile));
    chmodSync(updown, 0o755);
    const cnf = await CnfIpsec.create(site.host, dir, { proposals: o.proposals, installVirtualIp: false, lab: { updown: () => updown } });
    const hub = new Hub(o.name, site, cnf, o.credentials, o.proposals, routesFile);
    try {
      await cnf.start();
    } catch (err) {
      await cnf.destroy();
      throw err;
    }
    return hub;
  }

  /** The hub's public IP: SCC's hub status.Ip, the devices' `right=`. */
  get address(): string {
    return this.site.publicAddress;
  }

  /** The data OIPs this hub hands out, by device. */
  get deviceOips(): ReadonlyMap<string, string> {
    return this.devices;
  }

  /**
   * SCC's hub side of a hub-device connection: the IpsecSite for `device` with `dataOip`
   * as its one-address pool, applied with a restart (all tunnels drop) unless `reload`.
   * Then §2.6: every other hub routes the OIP towards this one.
   */
  async addDevice(device: string, dataOip: string, apply: ApplyMode = 'restart'): Promise<void> {
    this.cnf.setRemote(hubSideOfDevice(this.name, device, dataOip, this.proposals), this.credentials);
    this.devices.set(device, dataOip);
    await this.apply(apply);
    for (const peer of this.peers) await peer.addCnfRoute(dataOip);
  }

  /**
   * SCC meshing this hub, just created, with `existing` (§3): IpsecSite 0/0 <-> 0/0 on
   * both; this one responds (auto=add) and is configured first, the existing one
   * initiates (auto=start). This hub gets a route for every device of the existing one.
   */
  async connectHub(existing: Hub, apply: ApplyMode = 'restart'): Promise<void> {
    if (this.devices.size) throw new Error(`SCC meshes hub ${this.name} with the other hubs when it is created, before any device connects to it`);
    const { onNew, onExisting } = hubToHub({ name: this.name, ip: this.address }, { name: existing.name, ip: existing.address }, this.proposals);
    this.cnf.setRemote(onNew, this.credentials);
    existing.cnf.setRemote(onExisting, existing.credentials);
    this.peers.add(existing);
    existing.peers.add(this);
    await this.apply(apply);
    for (const oip of existing.devices.values()) await this.addCnfRoute(oip);
    await existing.apply(apply);
  }

  /**
   * What the CNF's CRD controller does after any CR change: charon stops and sends a DELETE
   * for every IKE_SA. A peer re-initiates on that DELETE only with closeaction=restart,
   * which SCC never renders: its devices, and the initiating hub of a hub-hub link whose
   * responder restarted, stay down (hub.test.ts (c)). Only this hub's own auto=start conns
   * to a known address (its hub-hub initiations) come back by themselves.
   */
  async restart(): Promise<void> {
    await this.cnf.restart();
  }

  async reload(): Promise<void> {
    await this.cnf.reload();
  }

  /** IKE_SAs and their CHILD_SAs as charon reports them (vici list-sas). */
  sas(): Promise<IkeSaState[]> {
    return this.cnf.sas();
  }

  /** `ipsec statusall`: the CNF's own view, which its status module scrapes. */
  statusall(): Promise<string> {
    return this.cnf.ipsec(['statusall']);
  }

  /** `ipsec leases`: the one-address pools made from each rightsourceip. */
  async leases(): Promise<Lease[]> {
    const out = await this.cnf.ipsec(['leases']);
    const leases: Lease[] = [];
    let pool = '';
    for (const line of out.split('\n')) {
      const p = /^Leases in pool '([^']+)'/.exec(line);
      if (p) pool = p[1]!;
      const l = /^\s+(\S+)\s+(online|offline)\s+'([^']*)'/.exec(line);
      if (l) leases.push({ pool, address: l[1]!, online: l[2] === 'online', identity: l[3]! });
    }
    return leases;
  }

  /** The rendered files, as a real CNF would have them in /var/ipsec. */
  ipsecConf(): string {
    return this.cnf.ipsecConf();
  }

  ipsecSecrets(): string {
    return this.cnf.ipsecSecrets();
  }

  log(): string {
    return this.cnf.log();
  }

  /** Stops charon; the site's namespace is the lab's to delete. */
  async stop(): Promise<void> {
    await this.cnf.stop();
  }

  async destroy(): Promise<void> {
    await this.cnf.destroy();
  }

  private async apply(mode: ApplyMode): Promise<void> {
    if (mode === 'restart') await this.cnf.restart();
    else await this.cnf.reload();
  }

  /** A CNFRoute (dst oip, dev vti_<hub ip>, table default), here into ipsec0; pending while ipsec0 is missing. */
  private async addCnfRoute(oip: string): Promise<void> {
    this.cnfRoutes.add(oip);
    writeFileSync(this.routesFile, [...this.cnfRoutes].map((r) => `${r}\n`).join(''));
    const link = await this.site.host.runner('ip', ['link', 'show', 'ipsec0'], { allowFailure: true });
    if (link.exitCode === 0) await this.site.host.runner('ip', ['route', 'replace', oip, 'dev', 'ipsec0']);
  }
}
