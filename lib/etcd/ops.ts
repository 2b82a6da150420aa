// Builders for the raw etcd requests the store sends, so that callers read as the
// transaction they mean: If(missing(k)) Then(put(k, v)) Else(get(k)).
import type { ICompare, IKeyValue, IRequestOp, IResponseOp } from 'etcd3';
import { prefixEnd } from './keys.js';

const b = (text: string) => Buffer.from(text, 'utf8');

export function missing(key: string): ICompare {
  return { key: b(key), target: 'Version', result: 'Equal', version: 0 };
}

export function valueIs(key: string, value: string): ICompare {
  return { key: b(key), target: 'Value', result: 'Equal', value: b(value) };
}

export function unchangedSince(key: string, modRevision: string): ICompare {
  return { key: b(key), target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

export function put(key: string, value: string): IRequestOp {
  return { request_put: { key: b(key), value: b(value) } };
}

/** A put whose key etcd deletes when `lease` expires or is revoked. */
export function putWithLease(key: string, value: string, lease: string): IRequestOp {
  return { request_put: { key: b(key), value: b(value), lease } };
}

export function del(key: string): IRequestOp {
  return { request_delete_range: { key: b(key) } };
}

/** Deletes every key starting with `prefix`. */
export function delPrefix(prefix: string): IRequestOp {
  return { request_delete_range: { key: b(prefix), range_end: b(prefixEnd(prefix)) } };
}

export function get(key: string): IRequestOp {
  return { request_range: { key: b(key) } };
}

/** The one key-value a `get` in a transaction returned, if the key existed. */
export function kvOf(response: IResponseOp | undefined): IKeyValue | undefined {
  return response?.response_range?.kvs?.[0];
}

export function text(buffer: Buffer | undefined): string {
  return buffer ? buffer.toString('utf8') : '';
}
