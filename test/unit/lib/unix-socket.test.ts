import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acceptsConnections, listenUnix } from '../../../lib/unix-socket.js';

describe('listenUnix', () => {
  it('creates the socket with its mode, not the umask\'s, and gives the umask back in the same tick', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-unix-'));
    const path = join(dir, 's.sock');
    const umask = process.umask(0o002);
    const server = createServer();
    try {
      const listening = listenUnix(server, path, 0o660);
      // before any other code runs: the file exists with its mode, and the umask is the process's again
      expect(statSync(path).mode & 0o777).toBe(0o660);
      expect(process.umask(0o002)).toBe(0o002);
      await listening;
      expect(await acceptsConnections(path)).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects when the path cannot be bound, the umask given back all the same', async () => {
    const umask = process.umask(0o022);
    try {
      await expect(listenUnix(createServer(), '/nonexistent-warren-dir/s.sock', 0o660)).rejects.toThrow(/EACCES|ENOENT/);
      expect(process.umask(0o022)).toBe(0o022);
    } finally {
      process.umask(umask);
    }
  });
});
