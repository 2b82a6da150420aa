// One class per way NAT traversal can fail, each with a stable code, so the traversal
// engine can decide (retry, fall back to the relay, give up) on `code` alone.
import { WarrenError } from '../../lib/errors.js';

/** Bytes that are not a well-formed STUN message or ChannelData frame. */
export class StunDecodeError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STUN_DECODE', message, options);
  }
}

/** A value that cannot be put on the wire (bad address, channel number out of range). */
export class StunEncodeError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STUN_ENCODE', message, options);
  }
}

/** No response after every retransmission (RFC 8489 section 6.2.1): path or server down. */
export class StunTimeoutError extends WarrenError {
  constructor(readonly server: string, readonly transmissions: number, readonly waitedMs: number) {
    super('STUN_TIMEOUT', `no STUN response from ${server} after ${transmissions} transmissions (${waitedMs} ms)`);
  }
}

/** The server answered with an error response (ERROR-CODE, RFC 8489 section 14.8). */
export class StunErrorResponse extends WarrenError {
  constructor(readonly server: string, readonly errorCode: number, readonly reason: string, readonly method: string) {
    super('STUN_ERROR_RESPONSE', `${method} to ${server} failed: ${errorCode} ${reason}`);
  }
}

/** MESSAGE-INTEGRITY or FINGERPRINT missing or wrong: forged, corrupted or wrong password. */
export class StunIntegrityError extends WarrenError {
  constructor(message: string) {
    super('STUN_INTEGRITY', message);
  }
}

/** A TURN client used after close, or out of channel numbers. */
export class TurnStateError extends WarrenError {
  constructor(message: string) {
    super('TURN_STATE', message);
  }
}

/** The TURN server cannot be reached over a stream transport (TCP or TLS): refused, timed out, certificate, or the connection ended. */
export class TurnTransportError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TURN_TRANSPORT', message, options);
  }
}
