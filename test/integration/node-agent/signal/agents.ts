// Signalling agents for the integration tests: each has its own store (its own etcd
// connection, as separate nodes would), a publisher and a watcher, and records every
// peer set it was handed. destroy() stops them all, for afterEach.
import { EtcdStore } from '../../../../lib/etcd/store.js';
import type { NodeRecordError } from '../../../../node-agent/signal/errors.js';
import { agentKeys, type AgentKeys } from '../../../../node-agent/signal/keys.js';
import { Publisher, type PublisherOptions } from '../../../../node-agent/signal/publisher.js';
import { PeerWatcher, type PeerSet, type WatcherOptions } from '../../../../node-agent/signal/watcher.js';
import type { ConnectionState } from '../../../../node-agent/signal/connection-state.js';
import type { NodeRecordContent } from '../../../../node-agent/signal/record.js';
import type { EtcdServer } from '../../../helpers/etcd.js';

export interface TestAgent {
  node: string;
  store: EtcdStore;
  publisher: Publisher | undefined;
  watcher: PeerWatcher;
  /** Every emission, with when it came (Date.now()). */
  emissions: { at: number; peers: PeerSet }[];
  invalid: NodeRecordError[];
  errors: unknown[];
  states: ConnectionState[];
  latest(): PeerSet;
}

export interface AgentOptions {
  /** Without a record the agent only watches. */
  record?: NodeRecordContent;
  ttlSeconds?: number;
  publisher?: Partial<PublisherOptions>;
  watcher?: Partial<WatcherOptions>;
}

export class Agents {
  readonly keys: AgentKeys = agentKeys('/warren');
  private readonly all: TestAgent[] = [];
  private readonly stores: EtcdStore[] = [];

  constructor(private readonly etcd: EtcdServer) {}

  newStore(): EtcdStore {
    const store = new EtcdStore({ endpoints: this.etcd.endpoint, timeoutMs: 1_000, requestTimeoutMs: 1_000 });
    this.stores.push(store);
    return store;
  }

  start(node: string, options: AgentOptions = {}): TestAgent {
    const store = this.newStore();
    const agent: TestAgent = {
      node, store, publisher: undefined, emissions: [], invalid: [], errors: [], states: [],
      watcher: undefined as unknown as PeerWatcher,
      latest: () => agent.emissions.at(-1)?.peers ?? new Map(),
    };
    agent.watcher = new PeerWatcher({
      store, keys: this.keys, self: node,
      onPeers: (peers) => agent.emissions.push({ at: Date.now(), peers }),
      onInvalid: (err) => agent.invalid.push(err),
      onError: (err) => agent.errors.push(err),
      ...options.watcher,
    });
    if (options.record) agent.publisher = this.publisher(store, options.record, options.ttlSeconds, agent, options.publisher);
    agent.publisher?.start();
    agent.watcher.start();
    this.all.push(agent);
    return agent;
  }

  /** Records `record`'s pod subnet and host address as its node's allocation, as configgen does. */
  async allocate(store: EtcdStore, record: Pick<NodeRecordContent, 'node' | 'podSubnet' | 'hostAddress'>): Promise<void> {
    await store.client.put(`${this.keys.dir}nodes/${record.node}`).value(JSON.stringify({ node: record.node, podSubnet: record.podSubnet, hostAddress: record.hostAddress }));
  }

  /**
   * A publisher of `record`, which starts once the allocation configgen would have recorded
   * for it is in etcd: peers take a record only where its allocation agrees.
   */
  publisher(store: EtcdStore, record: NodeRecordContent, ttlSeconds = 30, agent?: TestAgent,
    extra: Partial<PublisherOptions> = {}): Publisher {
    const publisher = this.newPublisher(store, record, ttlSeconds, agent, extra);
    const start = publisher.start.bind(publisher);
    publisher.start = () => void this.allocate(store, record).then(start, (err: unknown) => agent?.errors.push(err));
    return publisher;
  }

  private newPublisher(store: EtcdStore, record: NodeRecordContent, ttlSeconds: number, agent: TestAgent | undefined,
    extra: Partial<PublisherOptions>): Publisher {
    return new Publisher({
      store, keys: this.keys, record, ttlSeconds,
      onState: (s) => agent?.states.push(s),
      onError: (err) => agent?.errors.push(err),
      ...extra,
    });
  }

  async destroy(): Promise<void> {
    await Promise.all(this.all.map(async (a) => {
      await a.watcher.stop();
      await a.publisher?.stop();
    }));
    for (const s of this.stores) s.close();
  }
}
