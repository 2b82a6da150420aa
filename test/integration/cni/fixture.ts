// One emulated node for a test file: its namespace, its own OVS, a host-local data
// directory, and pod namespaces that are removed after each test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../../helpers/netns.js';
import { startOvs, type OvsInstance } from '../../helpers/ovs.js';
import { cni, type PluginCall, type PluginReply } from '../../helpers/plugin.js';

export const NETWORK = 'wtest';

/**
 * ADDs the plugin must refuse, each with its spec code, and change nothing: [what, code,
 * environment over the valid one, config over the valid one or raw stdin]. Run on the
 * standalone path (plugin.test.ts) and through both paths (resident.test.ts).
 */
export const ADD_REFUSALS: [string, number, Record<string, string>, Record<string, unknown> | string | undefined][] = [
  ['malformed JSON', 6, {}, '{"cniVersion": "1.0.0",'],
  ['a missing CNI_COMMAND', 4, { CNI_COMMAND: '' }, undefined],
  ['an unknown CNI_COMMAND', 4, { CNI_COMMAND: 'RESTART' }, undefined],
  ['a missing CNI_CONTAINERID', 4, { CNI_CONTAINERID: '' }, undefined],
  ['a missing CNI_NETNS', 4, { CNI_NETNS: '' }, undefined],
  ['an unsupported cniVersion', 1, {}, { cniVersion: '0.2.0' }],
  ['a bad MTU', 7, {}, { mtu: 99999 }],
  ['a bridge name too long', 7, {}, { bridge: 'warrenbridge0123' }],
  ['an unknown field', 2, {}, { brdige: 'x' }],
  ['an IPAM plugin not on CNI_PATH', 7, { CNI_PATH: '/nonexistent' }, undefined],
  ['a netns that does not exist', 3, { CNI_NETNS: '/run/netns/warren-does-not-exist' }, undefined],
  ['a resident socket that is no absolute path', 7, {}, { residentSocket: 'run/warren/cni.sock' }],
];

export class NodeFixture {
  private pods: Netns[] = [];
  private attachments: { containerId: string; ifname: string; config: Record<string, unknown>; env?: Record<string, string | undefined> }[] = [];
  private constructor(readonly node: Netns, readonly ovs: OvsInstance, readonly dataDir: string) {}

  static async start(): Promise<NodeFixture> {
    const node = await Netns.create('node');
    const ovs = await startOvs(node);
    return new NodeFixture(node, ovs, mkdtempSync(join(tmpdir(), 'warren-ipam-')));
  }

  get ipamDir(): string {
    return join(this.dataDir, NETWORK);
  }

  config(patch: Record<string, unknown> = {}, ipamPatch: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.0.0', name: NETWORK, type: 'warren', mtu: 1400, podCIDR: '10.244.0.0/16', ovsdb: this.ovs.db,
      ipam: { type: 'host-local', dataDir: this.dataDir, ranges: [[{ subnet: '10.244.3.0/24' }]], ...ipamPatch },
      ...patch,
    };
  }

  async pod(): Promise<Netns> {
    const p = await Netns.create('pod');
    this.pods.push(p);
    return p;
  }

  cni(call: Omit<PluginCall, 'node'>): Promise<PluginReply> {
    const ifname = call.ifname ?? 'eth0';
    if (call.command === 'ADD' && call.containerId && typeof call.config === 'object') {
      this.attachments.push({ containerId: call.containerId, ifname, config: call.config, env: call.env });
    }
    const reply = cni({ node: this.node, ...call });
    if (call.command === 'DEL') {
      void reply.then((r) => {
        if (r.exitCode === 0) this.attachments = this.attachments.filter((a) => a.containerId !== call.containerId || a.ifname !== ifname);
      });
    }
    return reply;
  }

  /** DEL for every attachment a test added (as a runtime would), then the pods go. */
  async cleanup(): Promise<void> {
    await Promise.all(this.attachments.map((a) => cni({ node: this.node, command: 'DEL', ...a })));
    this.attachments = [];
    await this.removePods();
  }

  async removePods(): Promise<void> {
    await Promise.all(this.pods.map((p) => p.destroy()));
    this.pods = [];
  }

  async stop(): Promise<void> {
    await this.cleanup();
    await this.ovs.stop();
    await this.node.destroy();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
