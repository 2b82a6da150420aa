// One STUN request/response exchange: over UDP with RFC 8489 section 6.2.1 retransmission,
// over a reliable port sent once and given the same time in all (section 6.2.2). Shared by
// the Binding client and the TURN client.
import { StunTimeoutError } from './errors.js';
import { STUN_LAST_WAIT_MULTIPLIER, STUN_MAX_TRANSMISSIONS, STUN_RTO_MS } from './knobs.js';
import { formatEndpoint, sameEndpoint, type Endpoint } from './stun-address.js';
import { decodeStun, isStun, type DecodedStun } from './stun.js';
import { systemTimers, type Timers } from './timers.js';
import type { UdpPort } from './udp.js';

export interface RetransmitPolicy {
  rtoMs: number;
  maxTransmissions: number;
  lastWaitMultiplier: number;
}

export const DEFAULT_RETRANSMIT: RetransmitPolicy = {
  rtoMs: STUN_RTO_MS,
  maxTransmissions: STUN_MAX_TRANSMISSIONS,
  lastWaitMultiplier: STUN_LAST_WAIT_MULTIPLIER,
};

/**
 * When each transmission goes out and when the transaction fails, in ms after the first:
 * the interval starts at RTO and doubles; after the last one wait Rm * RTO (section 6.2.1;
 * with the defaults 0, 500, 1500, ..., 31500 and failure at 39500).
 */
export function retransmitSchedule(policy: RetransmitPolicy): { sendAtMs: number[]; giveUpAtMs: number } {
  if (policy.rtoMs <= 0 || policy.maxTransmissions < 1 || policy.lastWaitMultiplier <= 0) {
    throw new RangeError(`invalid retransmission policy ${JSON.stringify(policy)}`);
  }
  const sendAtMs = [0];
  for (let i = 1; i < policy.maxTransmissions; i++) sendAtMs.push(sendAtMs[i - 1]! + policy.rtoMs * 2 ** (i - 1));
  return { sendAtMs, giveUpAtMs: sendAtMs[sendAtMs.length - 1]! + policy.rtoMs * policy.lastWaitMultiplier };
}

export interface TransactionOptions {
  timers?: Timers;
  retransmit?: Partial<RetransmitPolicy>;
}

export interface TransactionResult {
  /** A success or error response with our transaction id, from the server we asked. */
  response: DecodedStun;
  /** From the first transmission: with transmissions > 1 it overstates the path's RTT. */
  rttMs: number;
  transmissions: number;
}

export function transact(port: UdpPort, server: Endpoint, request: Buffer, options: TransactionOptions = {}): Promise<TransactionResult> {
  const timers = options.timers ?? systemTimers;
  const schedule = retransmitSchedule({ ...DEFAULT_RETRANSMIT, ...options.retransmit });
  const { sendAtMs, giveUpAtMs } = port.reliable ? { sendAtMs: [0], giveUpAtMs: schedule.giveUpAtMs } : schedule;
  const transactionId = request.subarray(8, 20);
  const started = timers.now();
  return new Promise((resolve, reject) => {
    let transmissions = 0;
    let timer: unknown;
    let done = false;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      unsubscribe();
      timers.clearTimeout(timer);
      settle();
    };
    const unsubscribe = port.onMessage((data, from) => {
      if (!sameEndpoint(from, server) || !isStun(data) || !data.subarray(8, 20).equals(transactionId)) return;
      let response: DecodedStun;
      try {
        response = decodeStun(data);
      } catch {
        return; // malformed: keep waiting, as if it were lost (a spoofer must not end the transaction)
      }
      if (response.cls !== 'success' && response.cls !== 'error') return;
      finish(() => resolve({ response, rttMs: timers.now() - started, transmissions }));
    });
    const step = (): void => {
      if (done) return;
      if (transmissions === sendAtMs.length) {
        finish(() => reject(new StunTimeoutError(formatEndpoint(server), transmissions, giveUpAtMs)));
        return;
      }
      transmissions++;
      port.send(request, server).catch((err: unknown) => finish(() => reject(err)));
      const next = transmissions < sendAtMs.length ? sendAtMs[transmissions]! : giveUpAtMs;
      timer = timers.setTimeout(step, next - sendAtMs[transmissions - 1]!);
    };
    step();
  });
}
