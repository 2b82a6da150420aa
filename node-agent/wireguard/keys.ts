// The node's WireGuard identity. The private key lives only in its 0600 file: `wg set
// private-key PATH` reads it from there, so it never enters an argv, a log line or an
// object that could be printed. Only the public key travels.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WarrenError } from '../../lib/errors.js';
import { exposureOf, SecretFileError } from '../../lib/secret-file.js';

export class KeyFileError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WIREGUARD_KEY_FILE', message, options);
  }
}

export interface NodeKey {
  publicKey: string;
  /** What `wg set IF private-key` is given. */
  privateKeyPath: string;
}

// A raw X25519 key wrapped in the fixed PKCS#8 header (RFC 8410), the only form
// node:crypto imports a bare 32-byte private key from.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** WireGuard's text form of a key: base64 of exactly 32 bytes. */
export function isWireguardKey(text: string): boolean {
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/.test(text);
}

/** A fresh private key, clamped as Curve25519 wants it (what `wg genkey` prints). */
export function generatePrivateKey(): string {
  const raw = randomBytes(32);
  raw[0]! &= 248;
  raw[31]! &= 127;
  raw[31]! |= 64;
  return raw.toString('base64');
}

/** What `wg pubkey` prints for this private key. */
export function publicKeyOf(privateKey: string): string {
  if (!isWireguardKey(privateKey)) throw new KeyFileError('not a WireGuard private key (base64 of 32 bytes)');
  const der = Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(privateKey, 'base64')]);
  const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32).toString('base64');
}

/**
 * The node's key at `path`: read when it exists (a restart keeps the node's identity,
 * so peers need not learn a new key), else created 0600 in a 0700 directory. A file
 * that exists but holds no valid key is an error, never silently replaced: that would
 * change the node's identity behind the cluster's back.
 */
export async function ensureNodeKey(path: string): Promise<NodeKey & { created: boolean }> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  let created = false;
  let text = await readKeyFile(path);
  if (text === undefined) {
    created = await createKeyFile(path);
    text = await readKeyFile(path);
    if (text === undefined) throw new KeyFileError(`${path} vanished right after it was written`);
  }
  if (!isWireguardKey(text)) throw new KeyFileError(`${path} does not hold a WireGuard private key; move it away to make a new one`);
  // A key file someone loosened is refused, not tightened back: what group or others could
  // read has to be taken as read, and only a new key undoes that.
  const exposed = exposureOf((await stat(path)).mode);
  if (exposed) {
    throw new SecretFileError(`WireGuard private key ${path} ${exposed}: refused; move it away to make a new key (peers learn the new public key from the node's record), or chmod 0600 it if nobody else can have read it`);
  }
  return { publicKey: publicKeyOf(text), privateKeyPath: path, created };
}

async function readKeyFile(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read ${path}`, { cause: err });
  }
}

// Written under a temporary name and hard-linked into place: the file is never seen
// half-written, and of two agents racing, the first link wins and both read its key.
async function createKeyFile(path: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, generatePrivateKey() + '\n', { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new KeyFileError(`cannot create ${path}`, { cause: err });
  } finally {
    await unlink(tmp);
  }
}
