// The OVSDB client against a real ovsdb-server and ovs-vswitchd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OvsdbClient } from '../../../lib/ovsdb/client.js';
import { attachPortOps, detachPortOps, selectPortOps } from '../../../lib/ovsdb/ops.js';
import { Netns } from '../../helpers/netns.js';
import { startOvs, type OvsInstance } from '../../helpers/ovs.js';
import { run } from '../../helpers/sh.js';

let node: Netns;
let ovs: OvsInstance;
const vsctl = (...args: string[]) => run('ovs-vsctl', [`--db=${ovs.db}`, ...args]).then((s) => s.trim());

beforeAll(async () => {
  node = await Netns.create('ovsdb');
  ovs = await startOvs(node);
  await vsctl('add-br', 'br0', '--', 'set', 'Bridge', 'br0', 'datapath_type=netdev');
  await run('ip', ['-n', node.name, 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'vp1']);
});
afterAll(async () => {
  await ovs?.stop();
  await node?.destroy();
});

describe('OvsdbClient', () => {
  it('attaches a port, waits for ovs-vswitchd to apply it, and detaches it', async () => {
    const c = await OvsdbClient.connect(ovs.db);
    try {
      await c.transactAndWait(attachPortOps({ bridge: 'br0', name: 'vp0', externalIds: { 'cni-container-id': 'c9' }, bridgeMtu: 1400 }));
      expect(await vsctl('list-ports', 'br0')).toBe('vp0');
      expect(await vsctl('get', 'Interface', 'vp0', 'external_ids:cni-container-id')).toBe('c9');
      // ovs-vswitchd has opened the device by the time the wait returns
      expect(await vsctl('get', 'Interface', 'vp0', 'ofport')).toMatch(/^[1-9]\d*$/);
      expect(await vsctl('get', 'Interface', 'br0', 'mtu_request')).toBe('1400');

      const [sel] = await c.transact(selectPortOps('vp0'));
      const uuid = (sel!.rows![0]!._uuid as [string, string])[1];
      await c.transact(detachPortOps(uuid));
      expect(await vsctl('list-ports', 'br0')).toBe('');
      expect(await vsctl('--columns=name', 'find', 'Interface', 'name=vp0')).toBe('');
    } finally {
      c.close();
    }
  });

  it('refuses a port on a missing bridge and leaves no rows', async () => {
    const c = await OvsdbClient.connect(ovs.db);
    try {
      await expect(c.transact(attachPortOps({ bridge: 'nobridge', name: 'vp0', externalIds: {}, bridgeMtu: 1400 }))).rejects.toThrow(/wait Bridge: timed out/);
      expect(await vsctl('--columns=name', 'find', 'Interface', 'name=vp0')).toBe('');
    } finally {
      c.close();
    }
  });

  it('refuses a second port of the same name', async () => {
    const c = await OvsdbClient.connect(ovs.db);
    try {
      const ops = attachPortOps({ bridge: 'br0', name: 'dup0', externalIds: {}, bridgeMtu: 1400 });
      await c.transact(ops);
      await expect(c.transact(ops)).rejects.toThrow(/constraint violation/);
      expect(await vsctl('list-ports', 'br0')).toBe('dup0');
    } finally {
      c.close();
    }
  });

  it('says clearly when nothing listens', async () => {
    await expect(OvsdbClient.connect('unix:/nonexistent/db.sock')).rejects.toThrow(/cannot reach OVSDB at unix:\/nonexistent\/db.sock/);
    await expect(OvsdbClient.connect('/run/db.sock')).rejects.toThrow(/neither unix:PATH nor tcp:HOST:PORT/);
  });
});
