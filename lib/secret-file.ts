// Files holding keys or secrets (etcd client key, TURN password, the SD-EWAN device key,
// the WireGuard private key, a config with a password inline) are refused when their
// owner is not alone in reading them: what group or others could read has to be taken as
// read. The mode is checked on the open file, so the check and the read see one file.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ConfigError, errorMessage } from './errors.js';

/** A secret's file readable (or writable) by group or others: refused, nothing started. Exit status 2. */
export class SecretFileError extends ConfigError {
  override readonly code = 'SECRET_FILE_EXPOSED';
}

/** Why a file of `mode` must not hold a secret, or undefined when only its owner can read or write it. Pure. */
export function exposureOf(mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return `is open to ${[(mode & 0o070) !== 0 ? 'its group' : '', (mode & 0o007) !== 0 ? 'others' : ''].filter(Boolean).join(' and ')} (mode 0${(mode & 0o777).toString(8)})`;
}

/** The contents of the secret file `path` (`field` names where it was configured), after its mode was checked. */
export function readSecretFile(field: string, path: string, fix = `chmod 0600 ${path}`): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new ConfigError(`${field} ${path} cannot be read: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const exposed = exposureOf(fstatSync(fd).mode);
    if (exposed) throw new SecretFileError(`${field} ${path} holds a secret and ${exposed}: refused; ${fix}`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Refuses `path` when it holds a secret inline (`field` names it) and is not its owner's alone. */
export function checkSecretHolder(field: string, path: string): void {
  readSecretFile(field, path, `chmod 0600 ${path}, or move the secret to a file of its own`);
}
