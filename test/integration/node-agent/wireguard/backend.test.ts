// The backends' edges on real namespaces: refusals, rollback of a failed start,
// idempotent destroy. This kernel has no wireguard module (TESTBED), so the kernel
// backend can only be shown to refuse cleanly.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBackend, type WireguardBackend } from '../../../../node-agent/wireguard/backend.js';
import { launchDetached } from '../../../../node-agent/wireguard/launch.js';
import { readExistingLink } from '../../../../node-agent/wireguard/link-kind.js';
import { uapiAnswers } from '../../../../node-agent/wireguard/uapi.js';
import { Netns, uniqueName } from '../../../helpers/netns.js';
import { run } from '../../../helpers/sh.js';

let dir: string;
const namespaces: Netns[] = [];
const backends: WireguardBackend[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warren-wgb-'));
});
afterEach(async () => {
  for (const b of backends.splice(0)) await b.destroy();
  for (const ns of namespaces.splice(0)) await ns.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function node(): Promise<Netns> {
  const ns = await Netns.create('wgb');
  namespaces.push(ns);
  return ns;
}

async function open(ns: Netns, ifname: string, extra: Partial<Parameters<typeof openBackend>[0]> = {}): Promise<WireguardBackend> {
  const b = await openBackend({ ifname, runner: ns.runner, netnsPath: ns.path, logPath: join(dir, `${ifname}.log`), ...extra });
  backends.push(b);
  return b;
}

describe('WireGuard backends on this kernel', () => {
  it('falls back to wireguard-go after probing the kernel, and destroys idempotently', async () => {
    const ns = await node();
    const ifname = uniqueName('wg');
    const b = await open(ns, ifname);
    expect(b.kind).toBe('wireguard-go');
    // The probe left no link behind.
    expect((JSON.parse(await run('ip', ['-n', ns.name, '-json', 'link', 'show'])) as unknown[]).length).toBe(1);
    expect(await b.ensureInterface()).toBe('created');
    expect(await b.ensureInterface()).toBe('adopted');
    expect(await readExistingLink(ns.runner, ifname)).toBe('tun');
    await b.destroy();
    expect(await readExistingLink(ns.runner, ifname)).toBeUndefined();
    expect(await uapiAnswers(ifname)).toBe(false);
    await b.destroy();
  });

  it('refuses the name another namespace already serves (the control socket is shared)', async () => {
    const [one, two] = [await node(), await node()];
    const ifname = uniqueName('wg');
    await (await open(one, ifname)).ensureInterface();
    const other = await open(two, ifname);
    await expect(other.ensureInterface()).rejects.toMatchObject({ code: 'WIREGUARD_INTERFACE_CONFLICT' });
    expect(await readExistingLink(two.runner, ifname)).toBeUndefined();
    backends.pop();
  });

  it('refuses a name held by a link of another kind', async () => {
    const ns = await node();
    const ifname = uniqueName('wg');
    await ns.runner('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'x0']);
    await expect(open(ns, ifname)).rejects.toMatchObject({ code: 'WIREGUARD_INTERFACE_CONFLICT' });
  });

  it('says clearly that kernel WireGuard is missing when it is asked for', async () => {
    const ns = await node();
    const ifname = uniqueName('wg');
    const b = await open(ns, ifname, { prefer: 'kernel' });
    expect(b.kind).toBe('kernel');
    await expect(b.ensureInterface()).rejects.toMatchObject({ code: 'WIREGUARD_KERNEL_UNAVAILABLE' });
    expect(await readExistingLink(ns.runner, ifname)).toBeUndefined();
  });

  it('reports a daemon that dies at start with its log, and removes the TUN it made for it', async () => {
    const ns = await node();
    const ifname = uniqueName('wg');
    const b = await open(ns, ifname, { launcher: (_file, _args, o) => launchDetached('sh', ['-c', 'echo "cannot open tun: boom" >&2; exit 3'], o) });
    const err = await b.ensureInterface().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WIREGUARD_GO_START_FAILED' });
    expect((err as Error).message).toMatch(/exited \(status 3\).*cannot open tun: boom/s);
    expect(await readExistingLink(ns.runner, ifname)).toBeUndefined();

    const missing = await open(ns, ifname, { launcher: (_file, _args, o) => launchDetached('/nonexistent/wireguard-go', [], o) });
    await expect(missing.ensureInterface()).rejects.toThrow(/could not start: spawn \/nonexistent\/wireguard-go ENOENT/);
    expect(await readExistingLink(ns.runner, ifname)).toBeUndefined();
  });
});
