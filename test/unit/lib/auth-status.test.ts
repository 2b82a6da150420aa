// etcdAuthEnabled's decision over the answers etcd 3.4 and 3.5 give, each turned into the
// store's error as EtcdStore turns it (lib/etcd/store-error.ts), without a server.
import { describe, expect, it } from 'vitest';
import {
  EtcdAuthenticationFailedError, EtcdPermissionDeniedError, EtcdUserNotFoundError, GRPCFailedPreconditionError,
  GRPCNotImplementedError, type AuthClient,
} from 'etcd3';
import { authOffWarning, etcdAuthEnabled } from '../../../lib/etcd/auth-status.js';
import { StorePermissionError, StoreRejectedError, StoreUnavailableError } from '../../../lib/etcd/errors.js';
import { rejected } from '../../../lib/etcd/store-error.js';
import type { EtcdStore } from '../../../lib/etcd/store.js';

type Answer = Error | object;
type Method = 'authStatus' | 'userList' | 'authenticate';

/** A store whose auth RPCs answer from `answers`; what it was asked, in order, lands in `asked`. */
function fakeStore(answers: Partial<Record<Method, Answer>>): { store: Pick<EtcdStore, 'auth'>; asked: Method[] } {
  const asked: Method[] = [];
  const reply = (m: Method) => async () => {
    asked.push(m);
    const a = answers[m];
    if (a === undefined) throw new Error(`unexpected ${m}`);
    if (a instanceof Error) throw a;
    return a;
  };
  const client = { authStatus: reply('authStatus'), userList: reply('userList'), authenticate: reply('authenticate') } as unknown as AuthClient;
  const store: Pick<EtcdStore, 'auth'> = {
    auth: async (what, send) => {
      try {
        return await send(client, { deadline: 0 });
      } catch (err) {
        if (err instanceof StoreUnavailableError) throw err;
        throw rejected('https://etcd:2379', what, err);
      }
    },
  };
  return { store, asked };
}

const etcd34 = { authStatus: new GRPCNotImplementedError('12 UNIMPLEMENTED: unknown method AuthStatus for service etcdserverpb.Auth') };
const denied = new EtcdPermissionDeniedError('7 PERMISSION_DENIED: etcdserver: permission denied');

describe('etcdAuthEnabled', () => {
  it('asks AuthStatus once where etcd has it (3.5 and later)', async () => {
    for (const enabled of [true, false]) {
      const { store, asked } = fakeStore({ authStatus: { enabled } });
      expect(await etcdAuthEnabled(store)).toBe(enabled);
      expect(asked).toEqual(['authStatus']);
    }
    expect(await etcdAuthEnabled(fakeStore({ authStatus: denied }).store)).toBe(true);
  });

  it('on etcd 3.4, takes a refused user list as "on": a node\'s credential, or one naming no user', async () => {
    for (const refusal of [denied, new EtcdUserNotFoundError('9 FAILED_PRECONDITION: etcdserver: user name not found')]) {
      const { store, asked } = fakeStore({ ...etcd34, userList: refusal });
      expect(await etcdAuthEnabled(store)).toBe(true);
      expect(asked).toEqual(['authStatus', 'userList']);
    }
  });

  it('on etcd 3.4, tells "off" from root by an anonymous authentication attempt', async () => {
    const off = fakeStore({ ...etcd34, userList: { users: [] }, authenticate: new GRPCFailedPreconditionError('9 FAILED_PRECONDITION: etcdserver: authentication is not enabled') });
    expect(await etcdAuthEnabled(off.store)).toBe(false);
    expect(off.asked).toEqual(['authStatus', 'userList', 'authenticate']);
    const rootOn = fakeStore({ ...etcd34, userList: { users: ['root'] }, authenticate: new EtcdAuthenticationFailedError('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password') });
    expect(await etcdAuthEnabled(rootOn.store)).toBe(true);
  });

  it('passes an unreachable etcd on as the store\'s error', async () => {
    const down = new StoreUnavailableError(['https://etcd:2379'], 'etcd at https://etcd:2379 unreachable for 60.0 s');
    await expect(etcdAuthEnabled(fakeStore({ authStatus: down }).store)).rejects.toBe(down);
  });

  it('words the warning with the endpoints', () => {
    expect(authOffWarning(['https://a:2379', 'https://b:2379'])).toBe('etcd authentication is off: every client of ' +
      'https://a:2379,https://b:2379 can rewrite every node\'s record and allocation and the pool; see README, Security');
  });
});

describe('rejected', () => {
  it('tells a permission refusal from other refusals, whether etcd3 typed it or not', () => {
    const plain = Object.assign(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'), { code: 7 });
    for (const err of [denied, plain]) {
      const r = rejected('https://etcd:2379', 'txn', err);
      expect(r).toBeInstanceOf(StorePermissionError);
      expect([r.code, r.exitStatus, r.message]).toEqual(['STORE_PERMISSION_DENIED', 7, 'etcd at https://etcd:2379 refused the txn request: 7 PERMISSION_DENIED: etcdserver: permission denied']);
    }
    const other = rejected('https://etcd:2379', 'txn', new Error('3 INVALID_ARGUMENT: etcdserver: too many operations in txn request'));
    expect(other).toBeInstanceOf(StoreRejectedError);
    expect(other).not.toBeInstanceOf(StorePermissionError);
    expect(other.code).toBe('STORE_REJECTED');
  });
});
