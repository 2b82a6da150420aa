// A minimal OVSDB JSON-RPC client (RFC 7047) over a unix or TCP socket: transact, and
// wait for ovs-vswitchd to apply a change. No maintained npm client exists; ovs-vsctl
// costs 10-12 ms per call (it loads the whole database), this a round trip.
import { connect, type Socket } from 'node:net';
import { WarrenError } from '../errors.js';
import { JsonStreamSplitter } from './json-stream.js';
import { bumpConfigOps, transactionFailure, type OpResult, type Operation } from './ops.js';

export class OvsdbError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('OVSDB', message, options);
  }
}

/** ovs-vsctl's default: $OVS_RUNDIR/db.sock, else /var/run/openvswitch/db.sock. */
export function defaultOvsdbAddress(env: Record<string, string | undefined> = process.env): string {
  return `unix:${env.OVS_RUNDIR ?? '/var/run/openvswitch'}/db.sock`;
}

const CUR_CFG_MONITOR = 'cur_cfg';

function curCfgOf(tableUpdate: unknown): number | undefined {
  const rows = (tableUpdate as { Open_vSwitch?: Record<string, { new?: { cur_cfg?: number } }> } | null)?.Open_vSwitch ?? {};
  return Object.values(rows).map((r) => r.new?.cur_cfg).find((v) => typeof v === 'number');
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly updateListeners = new Set<(params: unknown[]) => void>();
  private closedError: Error | undefined;
  private curCfg: number | undefined;
  private curCfgWatch: Promise<void> | undefined;
  private readonly curCfgWaiters = new Set<() => void>();

  private constructor(private readonly socket: Socket, readonly address: string) {
    const splitter = new JsonStreamSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const text of splitter.push(chunk)) this.receive(JSON.parse(text) as Record<string, unknown>);
    });
    const fail = (err: Error) => {
      this.closedError ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      for (const w of [...this.curCfgWaiters]) w();
    };
    socket.on('error', (err) => fail(new OvsdbError(`OVSDB at ${address}: ${err.message}`, { cause: err })));
    socket.on('close', () => fail(new OvsdbError(`OVSDB at ${address} closed the connection`)));
  }

  /** Whether the connection is gone (closed here, by the server, or broken). */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  static connect(address: string, timeoutMs = 10_000): Promise<OvsdbClient> {
    return new Promise((resolve, reject) => {
      let socket: Socket;
      if (address.startsWith('unix:')) socket = connect({ path: address.slice(5) });
      else if (address.startsWith('tcp:')) {
        const at = address.lastIndexOf(':');
        socket = connect({ host: address.slice(4, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) });
      } else return reject(new OvsdbError(`OVSDB address ${JSON.stringify(address)} is neither unix:PATH nor tcp:HOST:PORT`));
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new OvsdbError(`OVSDB at ${address} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new OvsdbClient(socket, address));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new OvsdbError(`cannot reach OVSDB at ${address}: ${err.message}`, { cause: err }));
      });
    });
  }

  private receive(msg: Record<string, unknown>): void {
    if (msg.method === 'echo') {
      this.socket.write(JSON.stringify({ id: msg.id, result: msg.params, error: null }));
      return;
    }
    if (msg.method === 'update') {
      for (const l of this.updateListeners) l(msg.params as unknown[]);
      return;
    }
    const p = this.pending.get(msg.id as number);
    if (!p) return;
    this.pending.delete(msg.id as number);
    if (msg.error) p.reject(new OvsdbError(`OVSDB request failed: ${JSON.stringify(msg.error)}`));
    else p.resolve(msg.result);
  }

  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ method, params, id }));
    });
  }

  /** Runs the operations as one transaction; throws OvsdbError naming the failed operation. */
  async transact(ops: readonly Operation[]): Promise<OpResult[]> {
    const results = (await this.request('transact', ['Open_vSwitch', ...ops])) as (OpResult | null)[];
    const failure = transactionFailure(ops, results);
    if (failure) throw new OvsdbError(`OVSDB transaction failed: ${failure}`);
    return results as OpResult[];
  }

  /** transact, then wait until ovs-vswitchd reports it applied the change (as ovs-vsctl does). */
  async transactAndWait(ops: readonly Operation[], timeoutMs = 10_000): Promise<OpResult[]> {
    const results = await this.transact([...ops, ...bumpConfigOps()]);
    const target = (results.at(-1)?.rows?.[0]?.next_cfg as number | undefined) ?? 0;
    await this.waitForCurCfg(target, timeoutMs);
    return results.slice(0, ops.length);
  }

  /**
   * One monitor of cur_cfg for the connection's life, set up at the first wait: a monitor
   * per wait, never cancelled, made ovsdb-server send every later change to each of them,
   * and a long-lived connection (the resident CNI server's) slower with every ADD.
   */
  private watchCurCfg(): Promise<void> {
    if (this.curCfgWatch) return this.curCfgWatch;
    const apply = (cur: number | undefined): void => {
      if (cur === undefined || (this.curCfg !== undefined && cur <= this.curCfg)) return;
      this.curCfg = cur;
      for (const w of [...this.curCfgWaiters]) w();
    };
    this.updateListeners.add((params) => {
      if (params[0] === CUR_CFG_MONITOR) apply(curCfgOf(params[1]));
    });
    const watch = this.request('monitor', ['Open_vSwitch', CUR_CFG_MONITOR, { Open_vSwitch: { columns: ['cur_cfg'] } }]).then((initial) => apply(curCfgOf(initial)));
    this.curCfgWatch = watch;
    // A monitor that could not be set up is asked for again by the next wait.
    watch.catch(() => {
      if (this.curCfgWatch === watch) this.curCfgWatch = undefined;
    });
    return watch;
  }

  private async waitForCurCfg(target: number, timeoutMs: number): Promise<void> {
    await this.watchCurCfg();
    if ((this.curCfg ?? -1) >= target) return;
    let waiter!: () => void;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = () => {
          if (this.closedError) reject(this.closedError);
          else if ((this.curCfg ?? -1) >= target) resolve();
        };
        this.curCfgWaiters.add(waiter);
        timer = setTimeout(() => reject(new OvsdbError(`ovs-vswitchd did not apply the change within ${timeoutMs} ms (is it running?)`)), timeoutMs);
      });
    } finally {
      clearTimeout(timer);
      this.curCfgWaiters.delete(waiter);
    }
  }

  close(): void {
    this.closedError ??= new OvsdbError('client closed');
    this.socket.destroy();
  }
}
