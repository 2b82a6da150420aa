import { mkdtemp, readFile, rm, stat, chmod, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretFileError } from '../../../../lib/secret-file.js';
import { ensureNodeKey, generatePrivateKey, isWireguardKey, KeyFileError, publicKeyOf } from '../../../../node-agent/wireguard/keys.js';
import { run } from '../../../helpers/sh.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warren-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('WireGuard keys', () => {
  it('derives the public key of RFC 7748 section 6.1 (Alice)', () => {
    const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
    expect(Buffer.from(publicKeyOf(alice), 'base64').toString('hex')).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  });

  it('generates clamped keys whose public key is the one `wg pubkey` prints', async () => {
    for (let i = 0; i < 5; i++) {
      const key = generatePrivateKey();
      expect(isWireguardKey(key)).toBe(true);
      const raw = Buffer.from(key, 'base64');
      expect(raw[0]! & 7).toBe(0);
      expect(raw[31]! & 0xc0).toBe(0x40);
      expect(publicKeyOf(key)).toBe((await run('wg', ['pubkey'], { input: key })).trim());
    }
  });

  it('agrees with `wg genkey` keys too', async () => {
    const key = (await run('wg', ['genkey'])).trim();
    expect(publicKeyOf(key)).toBe((await run('wg', ['pubkey'], { input: key })).trim());
  });

  it('tells keys from other text', () => {
    expect(isWireguardKey('eMXEJSjBoV5G+KmSX8QHr3lfjFSnL2oXUkzep8UclW8=')).toBe(true);
    expect(isWireguardKey('eMXEJSjBoV5G+KmSX8QHr3lfjFSnL2oXUkzep8UclW9=')).toBe(false); // stray low bits
    expect(isWireguardKey('eMXEJSjBoV5G+KmSX8QHr3lfjFSnL2oXUkzep8UclW8')).toBe(false);
    expect(isWireguardKey('(none)')).toBe(false);
    expect(() => publicKeyOf('nope')).toThrow(KeyFileError);
  });
});

describe('ensureNodeKey', () => {
  it('creates the key 0600 in a 0700 directory, then reuses it', async () => {
    const path = join(dir, 'state', 'wireguard.key');
    const first = await ensureNodeKey(path);
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    const text = (await readFile(path, 'utf8')).trim();
    expect(first.publicKey).toBe(publicKeyOf(text));
    expect(first.privateKeyPath).toBe(path);

    const again = await ensureNodeKey(path);
    expect(again).toEqual({ ...first, created: false });
  });

  it('keeps the private key out of what it returns', async () => {
    const path = join(dir, 'k');
    const key = await ensureNodeKey(path);
    const secret = (await readFile(path, 'utf8')).trim();
    expect(JSON.stringify(key)).not.toContain(secret);
  });

  it('accepts a key written by `wg genkey` (mode 0600), and refuses one group or others could read, leaving it as it is', async () => {
    const path = join(dir, 'k');
    const key = (await run('wg', ['genkey'])).trim();
    await mkdir(dir, { recursive: true });
    await writeFile(path, key + '\n', { mode: 0o600 });
    const got = await ensureNodeKey(path);
    expect(got.created).toBe(false);
    expect(got.publicKey).toBe((await run('wg', ['pubkey'], { input: key })).trim());
    await chmod(path, 0o644);
    const err = await ensureNodeKey(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretFileError);
    expect((err as Error).message).toBe(`WireGuard private key ${path} is open to its group and others (mode 0644): refused; move it away to make a new key (peers learn the new public key from the node's record), or chmod 0600 it if nobody else can have read it`);
    expect((err as Error).message).not.toContain(key);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await readFile(path, 'utf8')).trim()).toBe(key);
  });

  it('refuses a file that holds no key instead of replacing the identity, and does not quote it', async () => {
    const path = join(dir, 'k');
    await mkdir(dir, { recursive: true });
    await writeFile(path, 'corrupted-secret\n', { mode: 0o600 });
    const err = await ensureNodeKey(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyFileError);
    expect((err as KeyFileError).code).toBe('WIREGUARD_KEY_FILE');
    expect((err as Error).message).not.toContain('corrupted-secret');
    expect((await readFile(path, 'utf8')).trim()).toBe('corrupted-secret');
  });

  it('gives every racer the same key', async () => {
    const path = join(dir, 'k');
    const all = await Promise.all([1, 2, 3, 4].map(() => ensureNodeKey(path)));
    expect(new Set(all.map((k) => k.publicKey)).size).toBe(1);
    expect(all.filter((k) => k.created)).toHaveLength(1);
  });
});
