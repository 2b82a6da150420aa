// The SD-EWAN gateway role of one node: every node follows the election (it routes the
// overlay's ranges to whichever node is active); a candidate that wins runs the tunnels to
// the hubs (hub-tunnels.ts) and the NAT that makes the cluster one device behind its OIP
// (nat-plan.ts); one that loses them stops both. The agent asks activeNode() at every
// reconcile and is told when it changes.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WarrenError, errorMessage } from '../../lib/errors.js';
import type { Runner } from '../../lib/runner.js';
import type { GatewaySettings } from '../config.js';
import type { GatewayStatus } from '../status.js';
import { HubTunnels } from './hub-tunnels.js';
import type { DeviceIdentity } from './ipsec-plan.js';

export class GatewayIdentityError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GATEWAY_IDENTITY_INVALID', message, options);
  }
}

/** What the role needs of the election (election.ts): who is active, told on every change. */
export interface Election {
  start(): void;
  stop(): Promise<void>;
}

export type ElectionFactory = (onChange: (active: string | undefined, iAmActive: boolean) => void) => Election;

/** What the role needs of the NAT (nat-apply.ts): the OIP to stand behind, or none. */
export type NatApplier = (oip: string | undefined) => Promise<void>;

export interface GatewayRoleOptions {
  settings: GatewaySettings;
  node: string;
  stateDir: string;
  runner: Runner;
  netnsPath?: string;
  election: ElectionFactory;
  nat: NatApplier;
  onActiveChange: () => void;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Reads the device's certificate, key and CAs, checking what charon would otherwise reject later and vaguer. */
export function readDeviceIdentity(s: GatewaySettings): DeviceIdentity {
  const read = (field: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new GatewayIdentityError(`gateway.${field} ${file}: ${errorMessage(err)}`, { cause: err });
    }
  };
  const cert = (field: string, file: string): X509Certificate => {
    try {
      return new X509Certificate(read(field, file));
    } catch (err) {
      if (err instanceof GatewayIdentityError) throw err;
      throw new GatewayIdentityError(`gateway.${field} ${file} is not a PEM certificate: ${errorMessage(err)}`, { cause: err });
    }
  };
  const device = cert('certFile', s.certFile);
  const subject = `CN=device-${s.device}-cert`;
  if (device.subject !== subject) throw new GatewayIdentityError(`gateway.certFile ${s.certFile} is for ${device.subject.replace(/\n/g, ', ')}, not ${subject} (gateway.device ${s.device})`);
  const keyPem = read('keyFile', s.keyFile);
  const cas = s.caFiles.map((f, i) => cert(`caFiles[${i}]`, f));
  if (!cas.some((ca) => device.checkIssued(ca))) throw new GatewayIdentityError(`gateway.certFile ${s.certFile} was issued by none of gateway.caFiles`);
  return { device: s.device, certDer: device.raw, keyPem, caDers: cas.map((c) => c.raw) };
}

export class GatewayRole {
  private identity!: DeviceIdentity;
  private election: Election | undefined;
  private tunnels: HubTunnels | undefined;
  private active: string | undefined;
  private switching: Promise<void> = Promise.resolve();
  private oip: string | undefined;

  constructor(private readonly o: GatewayRoleOptions) {}

  get candidate(): boolean {
    return this.o.settings.candidates.includes(this.o.node);
  }

  /** The node the overlay's ranges are routed to, undefined while none is elected. */
  activeNode(): string | undefined {
    return this.active;
  }

  start(): void {
    // A candidate without a usable identity must not win the election and then fail.
    if (this.candidate) this.identity = readDeviceIdentity(this.o.settings);
    this.election = this.o.election((active, iAmActive) => {
      const changed = active !== this.active;
      this.active = active;
      this.switching = this.switching.then(() => (iAmActive ? this.becomeActive() : this.standDown()));
      if (changed) {
        this.o.log('info', 'SD-EWAN gateway', { active: active ?? 'none', thisNode: iAmActive ? 'active' : this.candidate ? 'standby' : 'member' });
        this.o.onActiveChange();
      }
    });
    this.election.start();
  }

  async stop(): Promise<void> {
    await this.election?.stop();
    await this.switching;
    await this.standDown();
  }

  status(): GatewayStatus {
    return {
      role: this.tunnels ? 'active' : this.candidate ? 'standby' : 'member',
      activeNode: this.active,
      device: this.o.settings.device,
      dataPath: this.tunnels?.kind,
      hubs: this.tunnels?.hubStates() ?? [],
    };
  }

  /** Byte counts are read from charon when asked (status, metrics). */
  async refresh(): Promise<void> {
    await this.tunnels?.refresh().catch(() => undefined);
  }

  private async becomeActive(): Promise<void> {
    if (this.tunnels) return;
    const s = this.o.settings;
    const tunnels = new HubTunnels({
      dir: join(this.o.stateDir, 'gateway'), runner: this.o.runner, netnsPath: this.o.netnsPath, log: this.o.log, identity: this.identity,
      hubs: s.hubs, settings: { proposals: s.proposals, dpdSeconds: s.dpdSeconds }, overlayRanges: s.overlayRanges,
    });
    this.tunnels = tunnels;
    tunnels.onChange(() => void this.followOip(tunnels));
    try {
      await tunnels.start();
    } catch (err) {
      this.o.log('error', 'starting the IPsec tunnels to the hubs', { error: errorMessage(err) });
    }
  }

  /** The NAT stands behind the OIP of the hub that carries the overlay now. */
  private async followOip(tunnels: HubTunnels): Promise<void> {
    const oip = tunnels.activeOip();
    if (oip === this.oip || tunnels !== this.tunnels) return;
    this.oip = oip;
    await this.o.nat(oip).catch((err: unknown) => this.o.log('warn', 'gateway NAT', { error: errorMessage(err) }));
  }

  private async standDown(): Promise<void> {
    const tunnels = this.tunnels;
    if (!tunnels) return;
    this.tunnels = undefined;
    this.oip = undefined;
    await tunnels.stop().catch((err: unknown) => this.o.log('warn', 'stopping the IPsec tunnels', { error: errorMessage(err) }));
    await this.o.nat(undefined).catch((err: unknown) => this.o.log('warn', 'removing the gateway NAT', { error: errorMessage(err) }));
  }
}
