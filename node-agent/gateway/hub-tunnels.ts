// The active gateway's IPsec: its own charon, the device's credentials and one connection
// per hub loaded over VICI (ipsec-plan.ts), SA state followed through VICI's events
// (sa-state.ts), and the overlay's ranges routed into the tunnel of the first hub that is
// up (routes.ts). charon re-initiates by itself (keyingtries forever, DPD and close actions
// restart) except in one case found here: a hub that restarts (SD-EWAN's CNF does after
// every configuration change) answers the immediate re-initiation with NO_PROPOSAL_CHOSEN
// until its connections are loaded again, and charon takes that as final. So while a hub
// is down and charon holds no IKE_SA for it, this file initiates it again, every few seconds.
import { join } from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import type { Runner } from '../../lib/runner.js';
import { CHARON_ROUTING_TABLE, probeKernelEsp, retransmitGiveUpSeconds, startCharon, type CharonConfig, type CharonProcess, type IpsecDataPath } from './charon.js';
import { credentialMessages, hubConnection, hubConnMessage, staleConnections, type DeviceIdentity, type HubTarget, type IpsecSettings } from './ipsec-plan.js';
import { activeHub, desiredRoutes, reconcileGatewayRoutes, removeCharonRules, type Egress } from './routes.js';
import { applyEvent, fromListSas, withHubs, type HubSaState } from './sa-state.js';
import { ViciClient, type ViciListener } from './vici/client.js';

/** libipsec's TUN device (charon's kernel-libipsec default name). */
export const LIBIPSEC_DEVICE = 'ipsec0';

export const SA_EVENTS = ['ike-updown', 'child-updown', 'ike-rekey', 'child-rekey'] as const;

export interface HubTunnelsOptions {
  /** charon's config, socket and log. */
  dir: string;
  runner: Runner;
  identity: DeviceIdentity;
  hubs: HubTarget[];
  settings: Omit<IpsecSettings, 'forceEncap'>;
  /** The overlay's address ranges, routed into the tunnel. */
  overlayRanges: string[];
  /** The node's network namespace when not the agent's own (the lab's emulated nodes). */
  netnsPath?: string;
  /** Chosen by probing the kernel when absent. */
  dataPath?: IpsecDataPath;
  retransmit?: CharonConfig['retransmit'];
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => Date;
}

/**
 * Gives up on a silent hub after 4.75 s (1 + 1.5 + 2.25): with DPD every 2 s a dead hub is
 * known within about 7 s and a new IKE_SA is on its way. Three datagrams lost in a row on
 * a bad link cost a needless re-initiation, which is cheap next to minutes of black hole.
 */
export const DEFAULT_RETRANSMIT = { timeoutSeconds: 1, base: 1.5, tries: 2 };

/** How often a hub without a tunnel, and without one being set up, is initiated again, and the routes converged. */
export const REINITIATE_MS = 2000;

export class HubTunnels {
  private supervisor: NodeJS.Timeout | undefined;
  private supervising: Promise<void> | undefined;
  private charon: CharonProcess | undefined;
  private vici: ViciClient | undefined;
  private states = new Map<string, HubSaState>();
  private dataPath: IpsecDataPath = 'libipsec';
  private routing: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly now: () => Date;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: HubTunnelsOptions) {
    this.now = o.now ?? (() => new Date());
    this.states = withHubs(new Map(), o.hubs.map((h) => h.name));
  }

  get kind(): IpsecDataPath {
    return this.dataPath;
  }

  /** Every state change (for status, metrics, tests). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  hubStates(): HubSaState[] {
    return [...this.states.values()];
  }

  /** The OIP of the hub carrying the overlay now (the routes' source, the NAT's address). */
  activeOip(): string | undefined {
    return activeHub(this.states, this.hubOrder())?.oip;
  }

  /** The OIPs of every hub whose tunnel is up: where other sites may reach this device. */
  upOips(): string[] {
    return this.hubStates().filter((s) => s.ike === 'established' && s.child === 'installed' && s.oip !== undefined).map((s) => s.oip!);
  }

  private hubOrder(): string[] {
    return this.o.hubs.map((h) => h.name);
  }

  async start(): Promise<void> {
    this.dataPath = this.o.dataPath ?? ((await probeKernelEsp(this.o.runner)) ? 'kernel' : 'libipsec');
    const retransmit = this.o.retransmit ?? DEFAULT_RETRANSMIT;
    this.o.log('info', 'IPsec to SD-EWAN hubs', { dataPath: this.dataPath, hubs: this.o.hubs.map((h) => `${h.name}=${h.address}`), deadHubAfterSeconds: this.o.settings.dpdSeconds + retransmitGiveUpSeconds(retransmit) });
    this.charon = await startCharon(join(this.o.dir, 'charon'), { dataPath: this.dataPath, retransmit }, this.o.netnsPath);
    void this.charon.exited.then((code) => {
      if (!this.stopping) this.o.log('error', 'charon exited', { code });
    });
    const vici = await ViciClient.connect(this.charon.viciSocket, { timeoutMs: 10_000 });
    this.vici = vici;
    const onEvent: ViciListener = (msg, event) => {
      this.states = applyEvent(this.states, event, msg, this.now());
      this.changed();
    };
    // Subscribed before anything is loaded: no up event can be missed.
    for (const e of SA_EVENTS) await vici.subscribe(e, onEvent);
    for (const { command, message } of credentialMessages(this.o.identity)) await vici.request(command, message);
    const settings = { ...this.o.settings, forceEncap: this.dataPath === 'libipsec' };
    const loaded = ((await vici.request('get-conns')).conns ?? []) as string[];
    for (const stale of staleConnections(loaded, this.o.hubs)) await vici.request('unload-conn', { name: stale });
    // start_action = start: charon initiates each as it is loaded, and keeps at it.
    for (const hub of this.o.hubs) await vici.request('load-conn', hubConnMessage(this.o.identity, hub, settings));
    this.states = fromListSas(this.states, await vici.list('list-sas'), this.now());
    this.changed();
    // Also converges the routes: one that could not be added when the SA came up (the
    // virtual IP not yet on the device: "invalid prefsrc") is added at the next tick.
    this.supervisor = setInterval(() => void (this.supervising ??= this.reinitiate().then(() => this.queueRoutes()).finally(() => (this.supervising = undefined))), REINITIATE_MS);
  }

  /** Initiates every hub that is down and has no IKE_SA under way (charon gave up on it). */
  private async reinitiate(): Promise<void> {
    const vici = this.vici;
    const down = this.hubStates().filter((s) => s.ike !== 'established').map((s) => hubConnection(s.hub));
    if (!vici || down.length === 0 || this.stopping) return;
    try {
      const trying = new Set((await vici.list('list-sas')).flatMap((sa) => Object.keys(sa)));
      for (const conn of down.filter((c) => !trying.has(c))) {
        // timeout -1: return at once; the outcome arrives as events.
        await vici.request('initiate', { ike: conn, child: conn, timeout: -1 });
      }
    } catch (err) {
      this.o.log('warn', 'initiating a hub again', { error: errorMessage(err) });
    }
  }

  /** Byte counts come from list-sas, read when asked. */
  async refresh(): Promise<HubSaState[]> {
    if (this.vici) this.states = fromListSas(this.states, await this.vici.list('list-sas'), this.now());
    return this.hubStates();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.supervisor);
    await this.supervising;
    this.vici?.close();
    // SIGTERM: charon deletes its SAs at the hubs, so a standby taking over is not refused as a duplicate.
    await this.charon?.stop();
    await this.routing;
    await reconcileGatewayRoutes(this.o.runner, []).catch(() => undefined);
  }

  private changed(): void {
    for (const l of this.listeners) l();
    void this.queueRoutes();
  }

  private queueRoutes(): Promise<void> {
    this.routing = this.routing.then(() => this.reconcileRoutes());
    return this.routing;
  }

  private async reconcileRoutes(): Promise<void> {
    if (this.stopping) return;
    const egress: Egress = { dev: LIBIPSEC_DEVICE };
    try {
      // charon adds its rule at start, and again if it was started again: checked every time.
      await removeCharonRules(this.o.runner, CHARON_ROUTING_TABLE);
      const r = await reconcileGatewayRoutes(this.o.runner, desiredRoutes(this.states, this.hubOrder(), this.o.overlayRanges, egress));
      if (r.added || r.removed) this.o.log('info', 'overlay routes', { ...r, via: this.activeOip() ?? 'none' });
    } catch (err) {
      this.o.log('warn', 'routing the overlay into IPsec', { error: errorMessage(err) });
    }
  }
}
