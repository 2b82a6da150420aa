// One emulated node for a test file: its namespace, its own OVS, a host-local data
// directory, and pod namespaces that are removed after each test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../../helpers/netns.js';
import { startOvs, type OvsInstance } from '../../helpers/ovs.js';
import { cni, type PluginCall, type PluginReply } from '../../helpers/plugin.js';

export const NETWORK = 'wtest';

export class NodeFixture {
  private pods: Netns[] = [];
  private attachments: { containerId: string; ifname: string; config: Record<string, unknown> }[] = [];
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
      this.attachments.push({ containerId: call.containerId, ifname, config: call.config });
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
