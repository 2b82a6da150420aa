// Failures of the etcd store, as the programs that use it must tell them apart: a store
// that cannot be reached (worth retrying, then worth a distinct exit status) and a store
// that answered "no" (permission, malformed request: retrying would not help).
import { WarrenError } from '../errors.js';

export class StoreUnavailableError extends WarrenError {
  readonly exitStatus = 3;
  readonly endpoints: readonly string[];
  constructor(endpoints: readonly string[], message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
    this.endpoints = endpoints;
  }
}

export class StoreRejectedError extends WarrenError {
  readonly exitStatus = 7;
  constructor(message: string, options?: { cause?: unknown }, code = 'STORE_REJECTED') {
    super(code, message, options);
  }
}

/**
 * etcd's authentication is on and the credential's roles do not cover the request: a
 * refusal callers act on (a node that may not allocate, a credential that is not root).
 */
export class StorePermissionError extends StoreRejectedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options, 'STORE_PERMISSION_DENIED');
  }
}

/** What is stored under a key cannot be read back (hand-edited, or another program's). */
export class StoreDataError extends WarrenError {
  readonly exitStatus = 7;
  constructor(key: string, why: string, options?: { cause?: unknown }) {
    super('STORE_DATA', `etcd key ${key} ${why}`, options);
  }
}

/** The store's own settings are wrong (endpoint syntax, unreadable certificate files). */
export class StoreConfigError extends WarrenError {
  readonly exitStatus = 2;
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_CONFIG', message, options);
  }
}
