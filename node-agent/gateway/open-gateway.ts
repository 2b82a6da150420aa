// Builds the gateway role from the agent's config: the election on the agent's etcd store
// and the NAT on the node's nftables. Kept apart so gateway-role.ts stays free of both.
import type { EtcdStore } from '../../lib/etcd/store.js';
import type { Runner } from '../../lib/runner.js';
import type { AgentConfig } from '../config.js';
import { errorMessage } from '../../lib/errors.js';
import { GatewayElection } from './election.js';
import { GatewayRole } from './gateway-role.js';
import { LIBIPSEC_DEVICE } from './hub-tunnels.js';
import { applyGatewayNat } from './nat-apply.js';

export interface OpenGatewayOptions {
  config: AgentConfig;
  store: EtcdStore;
  runner: Runner;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  onActiveChange: () => void;
}

export function openGateway(o: OpenGatewayOptions): GatewayRole {
  const c = o.config;
  return new GatewayRole({
    settings: c.gateway!, node: c.nodeName, stateDir: c.stateDir, runner: o.runner, log: o.log, onActiveChange: o.onActiveChange,
    election: (onChange) => new GatewayElection({
      store: o.store, prefix: c.etcdPrefix, node: c.nodeName, candidate: c.gateway!.candidates.includes(c.nodeName), onChange,
      onError: (err) => o.log('warn', 'gateway election', { error: errorMessage(err) }),
    }),
    nat: (oip) => applyGatewayNat(o.runner, { oip, egressDevice: LIBIPSEC_DEVICE, overlayRanges: c.gateway!.overlayRanges, exports: c.gateway!.exports }).then(() => undefined),
  });
}
