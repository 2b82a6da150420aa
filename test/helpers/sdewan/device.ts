// A plain strongSwan device, not Warren: what an SD-EWAN edge's CNF makes of the IpsecHost
// SCC renders for it (SDEWAN.md §2.3: right=<hub IP>, leftsourceip=%config,
// rightsubnet=0.0.0.0/0, leftid CN=device-<d>-cert, rightid CN=hub-<h>-cert, auto=start),
// through the same stroke machinery as the hub (cnf-ipsec.ts), in its own namespace behind
// one of the NAT lab's NATs. Once the hub's virtual IP (the data OIP) is installed, a TCP
// echo service listens on it.
//
// Departure forced by this machine: with kernel XFRM, the device's policy OIP/32 <-> 0/0
// protects whatever leaves with the OIP as source, with no route needed (the CNF sets
// install_routes = no). kernel-libipsec only sees what is routed into its TUN device, so
// the lab's updown (standing in for /etc/updown_oip, whose additions never run as SCC
// configures it, §2.5) routes traffic from the OIP into ipsec0: a rule `from <OIP> lookup
// 40` (table 40 is the CNF's `cnf` table) with a default route over ipsec0.
// Not emulated: §2.6's device-side CNFRoute/CNFNAT, which route and SNAT pod traffic to the
// OIP; a plain device has no pods, its clients bind to the OIP instead.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatLab, NsWorker, SiteKind } from '../natlab.js';
import type { Netns } from '../netns.js';
import { waitFor } from '../sh.js';
import { deviceSideOfHub, type Proposal } from './cnf-config.js';
import { CnfIpsec, type CnfCredentials, type IkeSaState } from './cnf-ipsec.js';

export const ECHO_PORT = 7;
const OIP_TABLE = 40;
const ECHO_WORKER = new URL('./echo-worker.ts', import.meta.url).pathname;

export interface PlainDeviceOptions {
  /** The SCC device name: identities are CN=device-<name>-cert. */
  name: string;
  /** The hub this device's IpsecHost points at. */
  hub: { name: string; address: string };
  credentials: CnfCredentials;
  proposals: readonly Proposal[];
  /** The NAT in front of the device; a home router unless told. */
  siteKind?: SiteKind;
  /**
   * An existing namespace to run in instead of a new site (a pod's: plain strongSwan from
   * the very namespace Warren's traffic starts in). The namespace stays its owner's.
   */
  host?: Netns;
  /** The identity to claim when it must differ from CN=device-<name>-cert (a test of refusal). */
  localIdentifier?: string;
  /** ipsec.conf options an operator adds by hand beyond SCC's rendering, e.g. `closeaction=restart`. */
  handEdits?: readonly string[];
}

const UPDOWN = `#!/bin/bash
# Written by the Warren lab (test/helpers/sdewan/device.ts): XFRM's source-address policy
# emulated for kernel-libipsec's TUN device.
set -o nounset
set -o errexit
PATH=/usr/sbin:/usr/bin:/sbin:/bin
case "\${PLUTO_VERB}" in
  up-client)
    ip route replace default dev ipsec0 table ${OIP_TABLE}
    ip rule del pref ${OIP_TABLE} 2>/dev/null || true
    ip rule add pref ${OIP_TABLE} from "\${PLUTO_MY_SOURCEIP}" lookup ${OIP_TABLE}
    ;;
  down-client)
    ip rule del pref ${OIP_TABLE} from "\${PLUTO_MY_SOURCEIP}" lookup ${OIP_TABLE} 2>/dev/null || true
    ;;
esac
`;

export class PlainDevice {
  private dataOip: string | undefined;
  private echo: NsWorker | undefined;

  /** `host` is the namespace charon and the echo service run in. */
  private constructor(readonly name: string, readonly host: Netns, private readonly cnf: CnfIpsec, private readonly lab: NatLab) {}

  /** Starts the device's ipsec service; the tunnel comes up on its own (auto=start): see waitForOip. */
  static async start(lab: NatLab, o: PlainDeviceOptions): Promise<PlainDevice> {
    const host = o.host ?? (await lab.addSite(o.siteKind ?? 'home-router')).host;
    const dir = mkdtempSync(join(tmpdir(), `warren-sdewan-dev-${o.name}-`));
    const updown = join(dir, 'updown_oip');
    writeFileSync(updown, UPDOWN);
    chmodSync(updown, 0o755);
    const cnf = await CnfIpsec.create(host, dir, { proposals: o.proposals, installVirtualIp: true, lab: { updown: () => updown, handEdits: o.handEdits } });
    const remote = deviceSideOfHub(o.name, o.hub.name, o.hub.address, o.proposals);
    cnf.setRemote(o.localIdentifier ? { ...remote, localIdentifier: o.localIdentifier } : remote, o.credentials);
    try {
      await cnf.start();
    } catch (err) {
      await cnf.destroy();
      throw err;
    }
    return new PlainDevice(o.name, host, cnf, lab);
  }

  /** The worker in the device's namespace (its echo service, its probes); only after waitForOip. */
  get worker(): NsWorker {
    if (!this.echo) throw new Error(`device ${this.name} has no worker yet: call waitForOip()`);
    return this.echo;
  }

  /** The data OIP the hub gave; only after waitForOip. */
  get oip(): string {
    if (!this.dataOip) throw new Error(`device ${this.name} has no OIP yet: call waitForOip()`);
    return this.dataOip;
  }

  /**
   * Waits until the tunnel is up and the OIP is installed on ipsec0 with its route, then
   * (the first time) starts the echo service on it. Resolves with the OIP.
   */
  async waitForOip(timeoutMs = 30_000): Promise<string> {
    let oip: string | undefined;
    await waitFor(`device ${this.name}'s tunnel and OIP`, async () => {
      oip = await this.installedOip();
      return oip !== undefined;
    }, timeoutMs, 100);
    if (this.dataOip && this.dataOip !== oip) throw new Error(`device ${this.name} got ${oip}, not its earlier OIP ${this.dataOip}`);
    this.dataOip = oip!;
    if (!this.echo) {
      this.echo = await this.lab.startWorker(this.host, ECHO_WORKER);
      await this.echo.call('serve', this.dataOip, ECHO_PORT, `echo from ${this.name}`);
    }
    return this.dataOip;
  }

  /** The OIP when an IKE_SA is established with an installed CHILD_SA, the VIP is on ipsec0 and the updown's rule is in place. */
  async installedOip(): Promise<string | undefined> {
    const vip = await this.negotiatedOip();
    if (!vip) return undefined;
    const addrs = (await this.host.runner('ip', ['-4', '-o', 'addr', 'show', 'dev', 'ipsec0'], { allowFailure: true })).stdout;
    const rules = (await this.host.runner('ip', ['rule', 'show', 'pref', String(OIP_TABLE)])).stdout;
    return addrs.includes(` ${vip}/`) && rules.includes(`from ${vip} lookup ${OIP_TABLE}`) ? vip : undefined;
  }

  /** The virtual IP of an established IKE_SA with an installed CHILD_SA, whether or not charon still has it on ipsec0. */
  async negotiatedOip(): Promise<string | undefined> {
    return (await this.cnf.sas()).find((s) => s.state === 'ESTABLISHED' && s.children.some((c) => c.state === 'INSTALLED'))?.localVips[0];
  }

  /** Takes the tunnel down and up again, as an operator would (`ipsec down`, `ipsec up`). */
  async reconnect(): Promise<void> {
    for (const conn of this.cnf.connNames) {
      await this.cnf.ipsec(['down', conn]);
      await this.cnf.ipsec(['up', conn]);
    }
  }

  /** One ICMP echo from this device's OIP. */
  async ping(to: string, timeoutSeconds = 1): Promise<boolean> {
    const r = await this.host.exec('ping', ['-c', '1', '-W', String(timeoutSeconds), '-I', this.oip, to], { allowFailure: true });
    return r.exitCode === 0;
  }

  /** A TCP exchange from this device's OIP with another device's echo service. */
  request(to: string, line: string, timeoutMs = 5000, port = ECHO_PORT): Promise<string> {
    if (!this.echo) throw new Error(`device ${this.name} has no worker yet: call waitForOip()`);
    return this.echo.call<string>('request', { host: to, port, localAddress: this.oip, line, timeoutMs });
  }

  sas(): Promise<IkeSaState[]> {
    return this.cnf.sas();
  }

  statusall(): Promise<string> {
    return this.cnf.ipsec(['statusall']);
  }

  ipsecConf(): string {
    return this.cnf.ipsecConf();
  }

  log(): string {
    return this.cnf.log();
  }

  /** Stops the echo service and charon; the namespaces are the lab's (or their owner's) to delete. */
  async destroy(): Promise<void> {
    await this.echo?.stop();
    await this.cnf.destroy();
  }
}
