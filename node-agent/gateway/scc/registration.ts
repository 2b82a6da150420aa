// The gateway's device setup taken from SD-EWAN's central controller: register() (client.ts)
// run with the agent's settings, its result turned into what the tunnels need (identity,
// hub addresses, proposals), and kept in the state dir. The copy lets a restarted
// candidate stand for election while SCC is down: SCC is a management plane, and an
// outage of it must not take the data plane of every device with it. A refusal (4xx, a
// conflicting registration, a malformed answer) is never papered over with the copy.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../../lib/errors.js';
import { writeFileAtomic } from '../../../lib/write-file.js';
import type { Clock } from '../../../lib/etcd/retry.js';
import type { GatewaySettings, SccSettings } from '../../config.js';
import type { DeviceIdentity, HubTarget } from '../ipsec-plan.js';
import type { SccRegistration } from './api.js';
import { isTransient, register, SccClient, SccConfigError, SccTimeoutError, type RegisterOptions } from './client.js';

/** What the gateway's tunnels are built from, whichever way it was obtained. */
export interface GatewaySetup {
  identity: DeviceIdentity;
  hubs: HubTarget[];
  proposals: string[];
  /** Per hub, the data OIP SCC allocated (the hub hands out exactly this one); absent without SCC. */
  oips?: Record<string, string>;
  /** Where it came from: the config's files, SCC now, or SCC's last answer while SCC is down. */
  source: 'files' | 'scc' | 'scc-cache';
}

/** The copy of SCC's answer, with what it answered for (a changed config does not reuse it). */
interface CachedRegistration {
  url: string;
  overlay: string;
  device: string;
  hubs: string[];
  registration: SccRegistration;
  proposals: string[];
  registeredAt: string;
}

export const REGISTRATION_FILE = 'scc-registration.json';

/** Pure: the setup from SCC's registration; a hub address in the config wins over SCC's. */
export function setupFromRegistration(s: GatewaySettings, reg: SccRegistration, sccProposals: readonly string[], source: GatewaySetup['source']): GatewaySetup {
  const hubs = s.hubs.map((h) => {
    const address = h.address ?? reg.hubEndpoints[h.name] ?? reg.hubPublicIps[h.name]?.[0];
    if (!address) throw new SccConfigError(`gateway.hubs: SCC reports no address for hub ${h.name}; set gateway.hubs[].address`);
    return { name: h.name, address };
  });
  const proposals = s.proposals.length ? s.proposals : [...sccProposals];
  if (!proposals.length) throw new SccConfigError(`overlay ${s.scc!.overlay} has no proposals in SCC and gateway.proposals is empty: SCC would fail every connection too`);
  return {
    identity: { device: s.device, certDer: new X509Certificate(reg.certificate).raw, keyPem: reg.key, caDers: [reg.caRoot, reg.caOverlay].map((pem) => new X509Certificate(pem).raw) },
    hubs, proposals, oips: { ...reg.dataOips }, source,
  };
}

export interface SccSetupOptions {
  settings: GatewaySettings;
  /** The gateway's state dir (`<stateDir>/gateway`), where the copy lives, mode 0600: it holds the device key. */
  dir: string;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  clock?: Clock;
  backoff?: RegisterOptions['backoff'];
  /**
   * Whether this node POSTs missing hub-device connections or waits for SCC to list them.
   * SCC checks for an existing connection and creates one in two steps, so two candidates
   * asking at once would get two OIPs for one hub: one candidate connects, the others
   * wait (and connect themselves after a round without it, if it is down).
   */
  connect: boolean;
  /** Reads the kubeconfig and the CA (tests pass files too; the seam is for errors). */
  readFile?: (path: string) => string;
}

/**
 * Registers the device with SCC (idempotent: a restart runs the same sequence) and returns
 * its setup. SCC unreachable or answering 5xx until the deadline: the last registration
 * for the same overlay, device and hubs, if one was kept; otherwise the error.
 */
export async function setupFromScc(o: SccSetupOptions): Promise<GatewaySetup> {
  const s = o.settings;
  const scc = s.scc!;
  const read = o.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const file = (field: string, path: string): string => {
    try {
      return read(path);
    } catch (err) {
      throw new SccConfigError(`gateway.scc.${field} ${path}: ${errorMessage(err)}`);
    }
  };
  const kubeConfig = file('kubeconfigFile', scc.kubeconfigFile);
  const client = new SccClient({ url: scc.url, overlay: scc.overlay, ca: scc.caFile ? file('caFile', scc.caFile) : undefined });
  const hubs = s.hubs.map((h) => h.name);
  const path = join(o.dir, REGISTRATION_FILE);
  try {
    const registration = await register(client, { device: s.device, kubeConfig, publicIps: scc.publicIps, hubs, connect: o.connect }, {
      timeoutMs: scc.timeoutSeconds * 1000, clock: o.clock, backoff: o.backoff, onRetry: (m) => o.log('info', m),
    });
    const proposals = s.proposals.length ? [] : await client.proposals();
    const setup = setupFromRegistration(s, registration, proposals, 'scc');
    const cached: CachedRegistration = { url: scc.url, overlay: scc.overlay, device: s.device, hubs, registration, proposals, registeredAt: new Date((o.clock?.now() ?? Date.now())).toISOString() };
    writeFileAtomic(path, `${JSON.stringify(cached, null, 2)}\n`, 0o600);
    return setup;
  } catch (err) {
    if (!isSccOutage(err)) throw err;
    const cached = readCache(path, scc, s.device, hubs);
    if (!cached) throw err;
    o.log('warn', 'SCC unavailable: using the last registration', { registeredAt: cached.registeredAt, error: errorMessage(err) });
    return setupFromRegistration(s, cached.registration, cached.proposals, 'scc-cache');
  }
}

/** SCC down, failing (5xx), or not ready in time: not a refusal of what we asked. */
export function isSccOutage(err: unknown): boolean {
  return isTransient(err) || err instanceof SccTimeoutError;
}

/** Between registration rounds while SCC is out: its own backoff already spans the round. */
export const SCC_OUTAGE_RETRY_MS = 5_000;

function readCache(path: string, scc: SccSettings, device: string, hubs: readonly string[]): CachedRegistration | undefined {
  let c: CachedRegistration;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as CachedRegistration;
  } catch {
    return undefined;
  }
  const same = c.url === scc.url && c.overlay === scc.overlay && c.device === device && c.hubs.join(',') === hubs.join(',');
  return same ? c : undefined;
}
