import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { exposureOf, readSecretFile, SecretFileError } from '../../../lib/secret-file.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function file(mode: number): string {
  dir ??= mkdtempSync(join(tmpdir(), 'warren-secret-'));
  const path = join(dir, `s${mode.toString(8)}`);
  writeFileSync(path, 'hunter2\n');
  chmodSync(path, mode);
  return path;
}

describe('exposureOf', () => {
  it('accepts only modes that leave group and others nothing', () => {
    for (const m of [0o600, 0o400, 0o700, 0o100600]) expect(exposureOf(m)).toBeUndefined();
    expect(exposureOf(0o644)).toBe('is open to its group and others (mode 0644)');
    expect(exposureOf(0o640)).toBe('is open to its group (mode 0640)');
    expect(exposureOf(0o604)).toBe('is open to others (mode 0604)');
    expect(exposureOf(0o620)).toBe('is open to its group (mode 0620)');
  });
});

describe('readSecretFile', () => {
  it('reads a file only its owner can read', () => {
    expect(readSecretFile('turn.passwordFile', file(0o600)).toString()).toBe('hunter2\n');
    expect(readSecretFile('turn.passwordFile', file(0o400)).toString()).toBe('hunter2\n');
  });

  it('refuses one its group or others can read, naming the field, the path, the mode and the fix', () => {
    const path = file(0o644);
    const err = (() => {
      try {
        readSecretFile('turn.passwordFile', path);
      } catch (e) {
        return e;
      }
    })() as SecretFileError;
    expect(err).toBeInstanceOf(SecretFileError);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('SECRET_FILE_EXPOSED');
    expect(err.exitStatus).toBe(2);
    expect(err.message).toBe(`turn.passwordFile ${path} holds a secret and is open to its group and others (mode 0644): refused; chmod 0600 ${path}`);
  });

  it('says a missing file cannot be read', () => {
    expect(() => readSecretFile('etcdKey', '/nonexistent/key.pem')).toThrow('etcdKey /nonexistent/key.pem cannot be read: ENOENT');
  });
});
