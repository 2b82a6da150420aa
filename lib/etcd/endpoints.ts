// etcd endpoints as users write them ("10.0.0.1:2379", "https://etcd:2379", Evio's
// "0.0.0.0:42000") turned into the URLs the client needs. Pure.
import { StoreConfigError } from './errors.js';

export function parseEndpoints(text: string | readonly string[], tls: boolean): string[] {
  const items = (typeof text === 'string' ? text.split(',') : text).map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new StoreConfigError('etcd endpoints: none given');
  return items.map((item) => {
    const withScheme = /^[a-z]+:\/\//i.test(item) ? item : `${tls ? 'https' : 'http'}://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new StoreConfigError(`etcd endpoint ${JSON.stringify(item)} is not host:port or a http(s) URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new StoreConfigError(`etcd endpoint ${JSON.stringify(item)} must use http or https`);
    }
    if (!url.hostname || !url.port || (url.pathname !== '/' && url.pathname !== '')) {
      throw new StoreConfigError(`etcd endpoint ${JSON.stringify(item)} must be host:port, e.g. 127.0.0.1:2379`);
    }
    if (tls && url.protocol === 'http:') {
      throw new StoreConfigError(`etcd endpoint ${JSON.stringify(item)} is plain http but TLS certificates were given: use https://`);
    }
    return `${url.protocol}//${url.host}`;
  });
}
