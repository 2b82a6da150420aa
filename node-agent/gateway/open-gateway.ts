// Builds the gateway role from the agent's config: the election on the agent's etcd store
// and the NAT on the node's nftables. Kept apart so gateway-role.ts stays free of both.
import { join } from 'node:path';
import type { EtcdStore } from '../../lib/etcd/store.js';
import type { Runner } from '../../lib/runner.js';
import type { AgentConfig } from '../config.js';
import { errorMessage } from '../../lib/errors.js';
import { GatewayElection } from './election.js';
import { GatewayRole, SCC_RETRY_MS } from './gateway-role.js';
import { LIBIPSEC_DEVICE } from './hub-tunnels.js';
import { ensureSysctlWith } from '../../lib/sysctl.js';
import { applyGatewayNat, forgetOipConnections } from './nat-apply.js';
import { isSccOutage, SCC_OUTAGE_RETRY_MS, setupFromScc } from './scc/registration.js';

export interface OpenGatewayOptions {
  config: AgentConfig;
  store: EtcdStore;
  runner: Runner;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  onActiveChange: () => void;
}

export function openGateway(o: OpenGatewayOptions): GatewayRole {
  const c = o.config;
  let inUse: string | undefined;
  return new GatewayRole({
    settings: c.gateway!, node: c.nodeName, stateDir: c.stateDir, runner: o.runner, log: o.log, onActiveChange: o.onActiveChange,
    election: (onChange, candidate) => new GatewayElection({
      store: o.store, prefix: c.etcdPrefix, node: c.nodeName, candidate, onChange,
      onError: (err) => o.log('warn', 'gateway election', { error: errorMessage(err) }),
    }),
    // The first candidate creates the hub connections; the others only after a round without them.
    sccSetup: (attempt) => setupFromScc({ settings: c.gateway!, dir: join(c.stateDir, 'gateway'), log: o.log, connect: attempt > 0 || c.gateway!.candidates[0] === c.nodeName }),
    sccRetryMs: (err) => (isSccOutage(err) ? SCC_OUTAGE_RETRY_MS : SCC_RETRY_MS),
    nat: async (oip, exportOips) => {
      // The gateway forwards every other node's traffic into the tunnels and the exports
      // back out over WireGuard. A node without pods yet (nothing else turned it on) or a
      // host that keeps it off would drop both silently, with every tunnel up.
      if (oip !== undefined && (await ensureSysctlWith(o.runner, 'net.ipv4.ip_forward', '1')) === 'set') {
        o.log('warn', 'IP forwarding was off on this node: turned on, as the gateway forwards the cluster\'s traffic to the hubs', { sysctl: 'net.ipv4.ip_forward' });
      }
      await applyGatewayNat(o.runner, { oip, exportOips, egressDevice: LIBIPSEC_DEVICE, overlayRanges: c.gateway!.overlayRanges, exports: c.gateway!.exports });
      const old = inUse;
      inUse = oip;
      if (old !== undefined && old !== oip) {
        const r = await forgetOipConnections(o.runner, old);
        o.log('info', 'connections of the previous OIP forgotten', { oip: old, now: oip ?? 'none', conntrack: r });
      }
    },
  });
}
