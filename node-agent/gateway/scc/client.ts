// The calls a device makes on SD-EWAN's central controller (SDEWAN.md §7), each one HTTP
// exchange turned into a decoded object or one of the errors below, and `register`, which
// runs the whole sequence until SCC reports the device and its hub connections ready.
//
// SCC answers 500 for nearly everything that goes wrong (a missing overlay, an object not
// found, an exhausted address pool), so a 5xx cannot be told from an outage: `register`
// retries every 5xx and every unreachable SCC until its deadline, and then surfaces SCC's
// own message. A 4xx is our request's fault and is never retried.
import http from 'node:http';
import https from 'node:https';
import { WarrenError, errorMessage } from '../../../lib/errors.js';
import { realClock, withRetry, type BackoffOptions, type Clock } from '../../../lib/etcd/retry.js';
import {
  SccProtocolError, certificateMaterial, certificateName, certificateRequest, decodeCertificate, decodeConnections, decodeDevice,
  decodeHubDevice, decodeHubs, decodeProposals, deviceDifferences, deviceRequestBody, hubDeviceRequestBody, isPendingConnectionQuirk,
  registrationProgress, registrationResult, type DeviceRequest, type RegistrationGoal, type SccCertificate, type SccConnection,
  type SccDevice, type SccHub, type SccRegistration,
} from './api.js';

export { SccProtocolError };

/** One request: SCC answers from MongoDB and cert-manager, seconds at worst. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Larger answers are not SCC's: a device object with a kubeconfig is a few KiB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Retry and poll schedule: SCC itself polls a Mode-2 device every 5 s, so waiting longer between reads gains nothing. */
export const REGISTER_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 5_000, random: Math.random };

/** No HTTP answer at all: refused, reset, timed out, DNS. */
export class SccUnreachableError extends WarrenError {
  constructor(readonly method: string, readonly url: string, readonly why: string, options?: { cause?: unknown }) {
    super('SCC_UNREACHABLE', `${method} ${url}: SCC unreachable: ${why}`, options);
  }
}

/** SCC answered with a status the call does not expect; `sccMessage` is SCC's own text (Go's http.Error body). */
export class SccHttpError extends WarrenError {
  constructor(readonly method: string, readonly url: string, readonly status: number, readonly sccMessage: string, note = '', options?: { cause?: unknown }) {
    super('SCC_HTTP', `${method} ${url} answered ${status}: ${sccMessage || '(empty body)'}${note}`, options);
  }
}

/** SCC already has the device (409), registered differently from what we ask. */
export class SccConflictError extends WarrenError {
  constructor(readonly url: string, readonly differences: readonly string[]) {
    super('SCC_CONFLICT', `${url} exists and differs from the registration asked for: ${differences.join('; ')}`);
  }
}

/** SCC's 201 with a zero object: the device was still pending and no connection was made. */
export class SccPendingConnectionError extends WarrenError {
  constructor(readonly url: string, readonly device: string) {
    super('SCC_CONNECTION_PENDING', `POST ${url} answered 201 with an empty object: SCC created no connection because device ${device} is not registered yet (RegStatus not "success")`);
  }
}

/** SCC says registration or a connection failed for good; waiting would not help. */
export class SccRegistrationError extends WarrenError {
  constructor(message: string) {
    super('SCC_REGISTRATION_FAILED', message);
  }
}

/** SCC kept saying "not yet" until the deadline. */
export class SccTimeoutError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SCC_TIMEOUT', message, options);
  }
}

/** Our own settings are wrong: refused before anything is sent. */
export class SccConfigError extends WarrenError {
  constructor(message: string) {
    super('SCC_CONFIG', message);
  }
}

/** Worth another try: SCC down, or a 5xx (which SCC also uses for "not there yet"). */
export function isTransient(err: unknown): boolean {
  return err instanceof SccUnreachableError || (err instanceof SccHttpError && err.status >= 500);
}

export interface SccClientOptions {
  /** Where SCC listens, e.g. http://scc.example:31298; `/scc/v1` is added here. */
  url: string;
  overlay: string;
  /** PEM of the CA that signed an https SCC's server certificate. */
  ca?: string | Buffer;
  requestTimeoutMs?: number;
}

interface Reply {
  method: string;
  url: string;
  status: number;
  text: string;
}

export class SccClient {
  readonly overlayUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: SccClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new SccConfigError(`SCC URL ${JSON.stringify(options.url)} is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new SccConfigError(`SCC URL ${options.url} must be http or https`);
    if (!options.overlay) throw new SccConfigError('SCC overlay name is empty');
    this.timeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.overlayUrl = `${base.origin}${base.pathname.replace(/\/+$/, '')}/scc/v1/overlays/${encodeURIComponent(options.overlay)}`;
  }

  get overlay(): string {
    return this.options.overlay;
  }

  /** POST the device certificate; on 409 GET `device-<name>-cert`, which returns the same data. */
  async ensureCertificate(device: string): Promise<{ created: boolean; certificate: SccCertificate }> {
    const post = await this.send('POST', '/certificates', certificateRequest(device));
    if (post.status === 201) return { created: true, certificate: decodeCertificate(json(post), where(post)) };
    if (post.status !== 409) throw httpError(post);
    return { created: false, certificate: await this.certificate(device) };
  }

  async certificate(device: string): Promise<SccCertificate> {
    const get = await this.expect('GET', `/certificates/${seg(certificateName('Device', device))}`, 200);
    return decodeCertificate(json(get), where(get));
  }

  /** POST the device; on 409 GET it and insist it is the registration asked for. */
  async ensureDevice(request: DeviceRequest): Promise<{ created: boolean; device: SccDevice }> {
    checkRequest(request);
    const post = await this.send('POST', '/devices', deviceRequestBody(request));
    if (post.status === 201) return { created: true, device: decodeDevice(json(post), where(post)) };
    if (post.status !== 409) throw httpError(post);
    const device = await this.device(request.device);
    const differences = deviceDifferences(device, request);
    if (differences.length) throw new SccConflictError(`${this.overlayUrl}/devices/${seg(request.device)}`, differences);
    return { created: false, device };
  }

  async device(name: string): Promise<SccDevice> {
    const get = await this.expect('GET', `/devices/${seg(name)}`, 200);
    return decodeDevice(json(get), where(get));
  }

  async hubs(): Promise<SccHub[]> {
    const get = await this.expect('GET', '/hubs', 200);
    return decodeHubs(json(get), where(get));
  }

  async hub(name: string): Promise<SccHub> {
    const get = await this.expect('GET', `/hubs/${seg(name)}`, 200);
    return decodeHubs([json(get)], where(get))[0]!;
  }

  /** The overlay's proposals as `<enc>-<hash>-<dh>`; SCC ships none by default. */
  async proposals(): Promise<string[]> {
    const get = await this.expect('GET', '/proposals', 200);
    return decodeProposals(json(get), where(get));
  }

  async deviceConnections(device: string): Promise<SccConnection[]> {
    const get = await this.expect('GET', `/devices/${seg(device)}/connections`, 200);
    return decodeConnections(json(get), where(get));
  }

  /**
   * Asks SCC for the hub-device IPsec connection. The call has no GET and so no 409: an
   * existing connection is a 500 with SCC's "is already created", which counts as done.
   */
  async connectHub(hub: string, device: string, isDelegateHub = false): Promise<{ created: boolean }> {
    const post = await this.send('POST', `/hubs/${seg(hub)}/devices`, hubDeviceRequestBody(device, isDelegateHub));
    if (post.status === 500 && post.text.includes(`between Hub ${hub} and Device ${device} is already created`)) return { created: false };
    if (post.status !== 201) throw httpError(post);
    if (isPendingConnectionQuirk(decodeHubDevice(json(post), where(post)))) throw new SccPendingConnectionError(post.url, device);
    return { created: true };
  }

  private async expect(method: string, path: string, status: number): Promise<Reply> {
    const reply = await this.send(method, path);
    if (reply.status !== status) throw httpError(reply);
    return reply;
  }

  private send(method: string, path: string, body?: unknown): Promise<Reply> {
    const url = `${this.overlayUrl}${path}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const fail = (why: string, cause?: unknown) => reject(new SccUnreachableError(method, url, why, { cause }));
      const target = new URL(url);
      const request = (target.protocol === 'https:' ? https : http).request(target, {
        method,
        // A fresh connection per call: SCC is asked a handful of times, and a pooled socket
        // that SCC closed would turn a healthy SCC into a spurious reset.
        agent: false,
        ca: this.options.ca,
        timeout: this.timeoutMs,
        headers: { accept: 'application/json', ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) request.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (err) => fail(`answer cut off: ${errorMessage(err)}`, err));
        res.on('end', () => resolve({ method, url, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      request.on('error', (err: NodeJS.ErrnoException) => fail(err.code ? `${err.code} (${errorMessage(err)})` : errorMessage(err), err));
      request.end(payload);
    });
  }
}

function checkRequest(request: DeviceRequest): void {
  if (!request.kubeConfig) throw new SccConfigError(`device ${request.device}: a kubeconfig is required (GitOps registration, Mode 3, is not supported)`);
}

function seg(name: string): string {
  return encodeURIComponent(name);
}

function where(reply: Reply): string {
  return `${reply.method} ${reply.url} (${reply.status})`;
}

function json(reply: Reply): unknown {
  try {
    return JSON.parse(reply.text);
  } catch (err) {
    throw new SccProtocolError(where(reply), 'body', `is not JSON: ${JSON.stringify(reply.text.slice(0, 80))}`, { cause: err });
  }
}

function httpError(reply: Reply): SccHttpError {
  return new SccHttpError(reply.method, reply.url, reply.status, reply.text.trim().slice(0, 1_000));
}

/** "Not yet" from SCC: retried on the backoff schedule, a SccTimeoutError at the deadline. */
class NotReady extends WarrenError {
  constructor(readonly reason: string) {
    super('SCC_NOT_READY', reason);
  }
}

export interface RegisterRequest extends DeviceRequest {
  /** Hubs whose connection to this device must be Deployed before registration counts as done. */
  hubs: readonly string[];
  /** POST missing hub-device connections ourselves; otherwise wait for an operator to. */
  connect: boolean;
}

export interface RegisterOptions {
  /** The whole sequence, waiting included. */
  timeoutMs: number;
  clock?: Clock;
  backoff?: BackoffOptions;
  /** One line per retry or wait, for the agent's log. */
  onRetry?: (message: string) => void;
}

/**
 * Certificate, device, then polling until SCC reports RegStatus success and each hub
 * connection Deployed with a data OIP. Every step is idempotent (409 and "already created"
 * are adopted), so a restarted agent runs the same call; steps already done in this call
 * are not repeated on a retry.
 */
export async function register(client: SccClient, request: RegisterRequest, options: RegisterOptions): Promise<SccRegistration> {
  checkRequest(request);
  const goal: RegistrationGoal = { overlay: client.overlay, device: request.device, hubs: request.hubs, connect: request.connect };
  let certificate: SccCertificate | undefined;
  let registered = false;
  return withRetry(async () => {
    certificate ??= (await client.ensureCertificate(request.device)).certificate;
    const material = certificateMaterial(certificate, request.device, `${client.overlayUrl}/certificates/${certificateName('Device', request.device)}`);
    if (!registered) {
      await client.ensureDevice(request);
      registered = true;
    }
    // One connect round per attempt: SCC deploys synchronously within the POST, so the
    // next reading normally shows the connections Deployed without a wait.
    for (let round = 0; ; round++) {
      const device = await client.device(request.device);
      const connections = await client.deviceConnections(request.device);
      const hubs = await client.hubs();
      const progress = registrationProgress(goal, device, connections, hubs);
      switch (progress.kind) {
        case 'ready':
          return registrationResult(goal, material, device, connections, hubs);
        case 'failed':
          throw new SccRegistrationError(progress.reason);
        case 'waiting':
          throw new NotReady(progress.reason);
        case 'connect':
          if (round > 0) throw new NotReady(`connections to ${progress.hubs.join(', ')} requested, SCC does not list them yet`);
          for (const hub of progress.hubs) await client.connectHub(hub, request.device);
      }
    }
  }, {
    timeoutMs: options.timeoutMs,
    clock: options.clock ?? realClock,
    backoff: options.backoff ?? REGISTER_BACKOFF,
    isRetryable: (err) => err instanceof NotReady || err instanceof SccPendingConnectionError || isTransient(err),
    onRetry: (err, attempt, delayMs) => options.onRetry?.(`SCC registration of ${request.device}: ${errorMessage(err)}; retry ${attempt} in ${delayMs} ms`),
    giveUp: (err, elapsedMs, attempts) => gaveUp(err, `after ${(elapsedMs / 1000).toFixed(1)} s and ${attempts} attempts`),
  });
}

// The last error, kept in its class so callers can still tell an outage from a refusal.
function gaveUp(err: unknown, after: string): Error {
  if (err instanceof SccHttpError) return new SccHttpError(err.method, err.url, err.status, err.sccMessage, ` (gave up ${after})`, { cause: err });
  if (err instanceof SccUnreachableError) return new SccUnreachableError(err.method, err.url, `${err.why} (gave up ${after})`, { cause: err });
  return new SccTimeoutError(`SCC registration not ready ${after}: ${errorMessage(err)}`, { cause: err });
}
