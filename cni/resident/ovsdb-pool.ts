// The resident server's OVSDB connections: one per address, kept open and shared by every
// request (JSON-RPC answers carry their request's id, so transactions interleave safely).
// A connection that closed (ovsdb-server restarted) is replaced at the next use.
import { OvsdbClient } from '../../lib/ovsdb/client.js';
import type { OvsdbConnect } from '../context.js';

export interface OvsdbPool {
  connect: OvsdbConnect;
  closeAll(): void;
}

export function ovsdbPool(): OvsdbPool {
  const clients = new Map<string, Promise<OvsdbClient>>();
  const get = (address: string, timeoutMs: number): Promise<OvsdbClient> => {
    const known = clients.get(address);
    if (known) {
      // Whoever finds the connection gone first replaces it; the others take the replacement.
      const replace = (): Promise<OvsdbClient> => (clients.get(address) === known ? fresh(address, timeoutMs) : get(address, timeoutMs));
      return known.then((c) => (c.closed ? replace() : c), replace);
    }
    return fresh(address, timeoutMs);
  };
  const fresh = (address: string, timeoutMs: number): Promise<OvsdbClient> => {
    const p = OvsdbClient.connect(address, timeoutMs);
    clients.set(address, p);
    // A failed connect is not remembered: the next request tries again.
    p.catch(() => {
      if (clients.get(address) === p) clients.delete(address);
    });
    return p;
  };
  return {
    connect: async (address, timeoutMs) => ({ client: await get(address, timeoutMs), release: () => {} }),
    closeAll: () => {
      for (const p of clients.values()) void p.then((c) => c.close(), () => {});
      clients.clear();
    },
  };
}
