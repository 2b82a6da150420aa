// Real unix sockets: the two agents of a surging DaemonSet pod talk over one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { handoverSocket, requestHandover, serveHandover } from '../../../node-agent/handover.js';

const dirs: string[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'warren-handover-'));
  dirs.push(d);
  return d;
}

describe('hand-over between agents', () => {
  it('finds no agent when none serves the state directory', async () => {
    expect(await requestHandover(handoverSocket(stateDir()), 1000)).toBe('no agent');
  });

  it('the running agent lets go once, however often asked, and answers only when it has', async () => {
    const path = handoverSocket(stateDir());
    let releases = 0;
    let letGo!: () => void;
    const stopped = new Promise<void>((r) => (letGo = r));
    servers.push(await serveHandover(path, async () => {
      releases++;
      await stopped;
    }));
    const asked = requestHandover(path, 5000);
    const again = requestHandover(path, 5000);
    let answered = false;
    void asked.then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    letGo();
    expect(await asked).toBe('released');
    expect(await again).toBe('released');
    expect(releases).toBe(1);
  });

  it('a hung agent is reported as no answer within the bound', async () => {
    const path = handoverSocket(stateDir());
    servers.push(await serveHandover(path, () => new Promise(() => {})));
    const t0 = Date.now();
    expect(await requestHandover(path, 300)).toBe('no answer');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('anything but the request releases nothing', async () => {
    const path = handoverSocket(stateDir());
    let releases = 0;
    servers.push(await serveHandover(path, async () => void releases++));
    await new Promise<void>((resolve) => {
      const s = connect(path, () => s.end('status please, and then some more\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect(releases).toBe(0);
  });

  it('replaces the socket file a killed agent left', async () => {
    const path = handoverSocket(stateDir());
    writeFileSync(path, ''); // a killed process unlinks nothing
    servers.push(await serveHandover(path, async () => {}));
    expect(await requestHandover(path, 1000)).toBe('released');
  });
});
