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

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly updateListeners = new Set<(params: unknown[]) => void>();
  private closedError: Error | undefined;

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

  private async waitForCurCfg(target: number, timeoutMs: number): Promise<void> {
    const monitorId = `cur_cfg-${this.nextId}`;
    let done!: () => void;
    const reached = new Promise<void>((r) => (done = r));
    const curCfgOf = (tableUpdate: unknown): number | undefined => {
      const rows = (tableUpdate as { Open_vSwitch?: Record<string, { new?: { cur_cfg?: number } }> }).Open_vSwitch ?? {};
      return Object.values(rows).map((r) => r.new?.cur_cfg).find((v) => typeof v === 'number');
    };
    const listener = (params: unknown[]) => {
      if (params[0] !== monitorId) return;
      const cur = curCfgOf(params[1]);
      if (cur !== undefined && cur >= target) done();
    };
    this.updateListeners.add(listener);
    let timer: NodeJS.Timeout | undefined;
    try {
      const initial = await this.request('monitor', ['Open_vSwitch', monitorId, { Open_vSwitch: { columns: ['cur_cfg'] } }]);
      const cur = curCfgOf(initial);
      if (cur !== undefined && cur >= target) return;
      await Promise.race([
        reached,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new OvsdbError(`ovs-vswitchd did not apply the change within ${timeoutMs} ms (is it running?)`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.updateListeners.delete(listener);
    }
  }

  close(): void {
    this.closedError ??= new OvsdbError('client closed');
    this.socket.destroy();
  }
}
