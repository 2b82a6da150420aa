// The SD-EWAN gateway role of one node: every node follows the election (it routes the
// overlay's ranges to whichever node is active); a candidate that wins runs the tunnels to
// the hubs (hub-tunnels.ts) and the NAT that makes the cluster one device behind its OIP
// (nat-plan.ts); one that loses them stops both. The agent asks activeNode() at every
// reconcile and is told when it changes. A candidate stands for election only once it has
// its device identity: read from files at start (a bad one stops the agent, exit 2), or
// registered with SCC (scc/registration.ts), retried in the background while that fails,
// the node following the election meanwhile.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readSecretFile } from '../../lib/secret-file.js';
import { join } from 'node:path';
import { WarrenError, errorMessage } from '../../lib/errors.js';
import type { Runner } from '../../lib/runner.js';
import type { GatewaySettings } from '../config.js';
import type { GatewayStatus } from '../status.js';
import { systemTimers } from '../nat/timers.js';
import { Wakeable } from '../signal/wakeable.js';
import { HubTunnels } from './hub-tunnels.js';
import type { DeviceIdentity, HubTarget } from './ipsec-plan.js';
import type { GatewaySetup } from './scc/registration.js';

export class GatewayIdentityError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GATEWAY_IDENTITY_INVALID', message, options);
  }
}

/** What the role needs of the election (election.ts): who is active, told on every change. */
export interface Election {
  start(): void;
  /** From follower to candidate. */
  stand(): void;
  stop(): Promise<void>;
}

export type ElectionFactory = (onChange: (active: string | undefined, iAmActive: boolean) => void, candidate: boolean) => Election;

/** After SCC refused: the next registration attempt (an operator has to change something first). */
export const SCC_RETRY_MS = 30_000;

/** What the role needs of the NAT (nat-apply.ts): the OIP to stand behind (or none), and every OIP exports answer at. */
export type NatApplier = (oip: string | undefined, exportOips: readonly string[]) => Promise<void>;

export interface GatewayRoleOptions {
  settings: GatewaySettings;
  node: string;
  stateDir: string;
  runner: Runner;
  netnsPath?: string;
  election: ElectionFactory;
  /** The device setup from SCC, for settings with `scc` (scc/registration.ts). */
  sccSetup?: (attempt: number) => Promise<GatewaySetup>;
  /** How long to wait after a failed registration; SCC_RETRY_MS unless told (an outage is worth a sooner look). */
  sccRetryMs?: (err: unknown) => number;
  nat: NatApplier;
  onActiveChange: () => void;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Reads the device's certificate, key and CAs, checking what charon would otherwise reject later and vaguer. */
export function readDeviceIdentity(s: GatewaySettings): DeviceIdentity {
  const { certFile, keyFile, caFiles } = s;
  if (!certFile || !keyFile || !caFiles) throw new GatewayIdentityError('gateway.certFile, keyFile and caFiles are required without gateway.scc');
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
  const device = cert('certFile', certFile);
  const subject = `CN=device-${s.device}-cert`;
  if (device.subject !== subject) throw new GatewayIdentityError(`gateway.certFile ${certFile} is for ${device.subject.replace(/\n/g, ', ')}, not ${subject} (gateway.device ${s.device})`);
  const keyPem = readSecretFile('gateway.keyFile', keyFile).toString('utf8');
  const cas = caFiles.map((f, i) => cert(`caFiles[${i}]`, f));
  if (!cas.some((ca) => device.checkIssued(ca))) throw new GatewayIdentityError(`gateway.certFile ${certFile} was issued by none of gateway.caFiles`);
  return { device: s.device, certDer: device.raw, keyPem, caDers: cas.map((c) => c.raw) };
}

/** An overlay managed by hand: everything from the config. */
export function setupFromFiles(s: GatewaySettings): GatewaySetup {
  const hubs = s.hubs.map((h): HubTarget => {
    if (!h.address) throw new GatewayIdentityError(`gateway.hubs ${h.name}: an address is required without gateway.scc`);
    return { name: h.name, address: h.address };
  });
  return { identity: readDeviceIdentity(s), hubs, proposals: s.proposals, source: 'files' };
}

export class GatewayRole {
  private setup: GatewaySetup | undefined;
  private setupError: string | undefined;
  private stopping = false;
  private readonly retry = new Wakeable(systemTimers);
  private election: Election | undefined;
  private tunnels: HubTunnels | undefined;
  private active: string | undefined;
  private switching: Promise<void> = Promise.resolve();
  private oips: string | undefined;

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
    const fromScc = this.candidate && this.o.settings.scc !== undefined;
    if (this.candidate && !fromScc) this.setup = setupFromFiles(this.o.settings);
    if (fromScc && !this.o.sccSetup) throw new GatewayIdentityError('gateway.scc is set but the agent was built without an SCC client');
    this.election = this.o.election((active, iAmActive) => {
      const changed = active !== this.active;
      this.active = active;
      this.switching = this.switching.then(() => (iAmActive ? this.becomeActive() : this.standDown()));
      if (changed) {
        this.o.log('info', 'SD-EWAN gateway', { active: active ?? 'none', thisNode: iAmActive ? 'active' : this.candidate ? 'standby' : 'member' });
        this.o.onActiveChange();
      }
    }, this.candidate && !fromScc);
    this.election.start();
    if (fromScc) void this.prepare();
  }

  /** SCC until it answers; then this node stands for election. */
  private async prepare(): Promise<void> {
    const get = this.o.sccSetup!;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const setup = await get(attempt);
        if (this.stopping) return;
        this.setup = setup;
        this.setupError = undefined;
        this.o.log('info', 'SD-EWAN device registered', { device: this.o.settings.device, source: setup.source, oips: setup.oips, hubs: setup.hubs.map((h) => `${h.name}=${h.address}`) });
        this.election?.stand();
        return;
      } catch (err) {
        this.setupError = errorMessage(err);
        const retryInMs = this.o.sccRetryMs?.(err) ?? SCC_RETRY_MS;
        this.o.log('error', 'SD-EWAN registration with SCC failed; this node stays out of the gateway election', { error: this.setupError, retryInMs });
        await this.retry.wait(retryInMs);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Not waiting for a registration in flight (up to SCC's timeout): once it returns it sees
    // `stopping`, and a stopped election refuses stand().
    this.retry.wake();
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
      ...(this.candidate ? { identity: this.setup?.source ?? 'pending' } : {}),
      ...(this.setupError ? { error: this.setupError } : {}),
    };
  }

  /** Byte counts are read from charon when asked (status, metrics). */
  async refresh(): Promise<void> {
    await this.tunnels?.refresh().catch(() => undefined);
  }

  private async becomeActive(): Promise<void> {
    const setup = this.setup;
    if (this.tunnels || !setup) return;
    const s = this.o.settings;
    const tunnels = new HubTunnels({
      dir: join(this.o.stateDir, 'gateway'), runner: this.o.runner, netnsPath: this.o.netnsPath, log: this.o.log, identity: setup.identity,
      hubs: setup.hubs, settings: { proposals: setup.proposals, dpdSeconds: s.dpdSeconds }, overlayRanges: s.overlayRanges,
    });
    this.tunnels = tunnels;
    tunnels.onChange(() => void this.followOip(tunnels));
    try {
      await tunnels.start();
    } catch (err) {
      this.o.log('error', 'starting the IPsec tunnels to the hubs', { error: errorMessage(err) });
    }
  }

  /** The NAT stands behind the OIP of the hub that carries the overlay now, and answers exports at every hub's. */
  private async followOip(tunnels: HubTunnels): Promise<void> {
    const oip = tunnels.activeOip();
    const exportOips = tunnels.upOips();
    const key = `${oip ?? ''} ${exportOips.join(',')}`;
    if (key === this.oips || tunnels !== this.tunnels) return;
    this.oips = key;
    await this.o.nat(oip, exportOips).catch((err: unknown) => this.o.log('warn', 'gateway NAT', { error: errorMessage(err) }));
  }

  private async standDown(): Promise<void> {
    const tunnels = this.tunnels;
    if (!tunnels) return;
    this.tunnels = undefined;
    this.oips = undefined;
    await tunnels.stop().catch((err: unknown) => this.o.log('warn', 'stopping the IPsec tunnels', { error: errorMessage(err) }));
    await this.o.nat(undefined, []).catch((err: unknown) => this.o.log('warn', 'removing the gateway NAT', { error: errorMessage(err) }));
  }
}
