// The CNI spec's error codes (spec 1.1.0, "Error"), plus Warren's own from 100 up.
// Every failure leaves the plugin as one CniError, printed as the spec's error JSON.
import { CommandError, WarrenError, errorMessage } from '../lib/errors.js';
import { OvsdbError } from '../lib/ovsdb/client.js';

export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableExistingDamaged: 51,
  // Warren's own.
  Internal: 100,
  CommandFailed: 101,
  CheckFailed: 102,
  IpamFailed: 103,
  OvsdbFailed: 104,
} as const;

export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode] | number;

export class CniError extends WarrenError {
  readonly cniCode: number;
  readonly details: string;
  constructor(cniCode: CniCodeValue, message: string, details = '', options?: { cause?: unknown }) {
    super(`CNI_${cniCode}`, message, options);
    this.cniCode = cniCode;
    this.details = details;
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.cniCode, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/** Anything thrown becomes a CniError: typed ones pass through, commands keep their stderr. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof OvsdbError) return new CniError(CniCode.OvsdbFailed, 'Open vSwitch failed', err.message, { cause: err });
  if (err instanceof CommandError) {
    return new CniError(CniCode.CommandFailed, `${err.command.split(' ')[0]} failed`, err.message, { cause: err });
  }
  return new CniError(CniCode.Internal, 'internal error', errorMessage(err), { cause: err });
}
