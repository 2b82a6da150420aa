// The agent's metrics as one part: the registry, the CNI log follower and the HTTP server.
// The server listens on the host-overlay address by default, which exists only once the
// WireGuard interface is configured: listen() is called after every reconcile that
// succeeded and binds on the first that finds the address (a failure is logged once per
// distinct message, then tried again).
import type { Server } from 'node:http';
import { errorMessage } from '../../lib/errors.js';
import type { Log } from '../agent.js';
import { METRICS_PORT, type AgentConfig } from '../config.js';
import { formatEndpoint, parseEndpoint } from '../nat/stun-address.js';
import type { AgentStatus } from '../status.js';
import { AgentMetrics } from './agent-metrics.js';
import { CniLogFollower } from './cni-log-follower.js';
import { serveMetrics } from './server.js';
import { scrapeTargets } from './targets.js';

export class MetricsService {
  private readonly metrics: AgentMetrics;
  private readonly follower: CniLogFollower;
  private server: Server | undefined;
  private listening: Promise<void> | undefined;
  private lastError: string | undefined;
  private stopped = false;

  constructor(private readonly config: Pick<AgentConfig, 'metrics' | 'cniLogFile'>, private readonly status: () => Promise<AgentStatus>, private readonly log: Log) {
    this.metrics = new AgentMetrics(status);
    this.follower = new CniLogFollower({
      path: config.cniLogFile,
      onCall: (c) => this.metrics.cniCall(c),
      onError: (err) => log('warn', 'reading the CNI log', { field: 'cniLogFile', value: config.cniLogFile, error: errorMessage(err) }),
    });
  }

  start(): void {
    this.follower.start();
  }

  /** Listens on metricsAddress, else the host-overlay address at METRICS_PORT; does nothing once listening. */
  listen(hostAddress: string): Promise<void> {
    if (this.server || this.stopped) return Promise.resolve();
    this.listening ??= this.bind(this.config.metrics?.address ?? formatEndpoint({ address: hostAddress, port: METRICS_PORT }))
      .finally(() => (this.listening = undefined));
    return this.listening;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listening;
    this.server?.close();
    await this.follower.stop();
  }

  private async bind(address: string): Promise<void> {
    try {
      const at = parseEndpoint(address)!;
      this.server = await serveMetrics(at, {
        '/metrics': { render: () => this.metrics.render(), contentType: this.metrics.registry.contentType },
        '/targets': { render: async () => JSON.stringify(scrapeTargets(await this.status(), at.port)), contentType: 'application/json' },
      });
      if (this.stopped) this.server.close();
      else this.log('info', 'metrics served', { url: `http://${address}/metrics` });
    } catch (err) {
      if (errorMessage(err) !== this.lastError) this.log('warn', 'cannot serve metrics yet; trying again after the next reconcile', { address, error: errorMessage(err) });
      this.lastError = errorMessage(err);
    }
  }
}
