// Debian's Prometheus on the control-plane node, scraping the agents with the config
// users get (daemonset/prometheus-scrape.yaml): targets from the local agent's HTTP
// service discovery, metrics fetched over the host overlay.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Daemon } from './kube-node.js';
import type { ClusterNode } from './cluster.js';

export const SCRAPE_CONFIG = resolve('daemonset/prometheus-scrape.yaml');
const LISTEN = '127.0.0.1:9090';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export class Prometheus {
  private constructor(readonly node: ClusterNode, readonly daemon: Daemon) {}

  static start(node: ClusterNode): Prometheus {
    const dir = join(node.root, 'prometheus');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const config = readFileSync(SCRAPE_CONFIG, 'utf8').replaceAll('AGENT_ADDRESS', node.hostAddress);
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const d = node.spawn('prometheus', 'prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${LISTEN}`]);
    return new Prometheus(node, d);
  }

  private async api<T>(path: string): Promise<T> {
    const r = await this.node.exec('curl', ['-sf', '--max-time', '5', `http://${LISTEN}${path}`], { allowFailure: true });
    if (r.exitCode !== 0) throw new Error(`prometheus ${path}: curl exit ${r.exitCode}\n${this.node.logOf('prometheus').slice(-1500)}`);
    return (JSON.parse(r.stdout) as { data: T }).data;
  }

  async query(expr: string): Promise<PromSample[]> {
    return (await this.api<{ result: PromSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result;
  }

  async targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[]> {
    return (await this.api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string; scrapeUrl: string }[] }>('/api/v1/targets')).activeTargets;
  }
}
