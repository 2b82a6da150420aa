// A real charon as an SD-EWAN hub's responder side for one device, configured over VICI
// with what SCC's IpsecSite CR gives the hub's CNF for a hub-device connection
// (SDEWAN.md §2.2): responder for %any, certificate authentication with SCC's identities,
// the device's data OIP as the only pool address, 0.0.0.0/0 on the hub's side. ESP is
// UDP-encapsulated (kernel-libipsec here); no VTI or mark (this kernel has neither).
import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ViciClient } from '../../../node-agent/gateway/vici/client.js';
import { Charon } from '../charon.js';
import type { Netns } from '../netns.js';
import { issueCert, type IssuedCert } from './scc-server.js';

export interface ResponderHubOptions {
  dir: string;
  ns: Netns;
  hub: string;
  device: string;
  oip: string;
  proposals: string[];
  /** Trust anchors: SD-EWAN's root CA, then the overlay CA (which signs the hub's certificate). */
  root: IssuedCert;
  overlayCa: IssuedCert;
}

const der = (pem: string): Buffer => new X509Certificate(pem).raw;

/** Starts the hub's charon (its directory kept: the certificate is made once) and loads the device's connection. */
export async function startResponderHub(o: ResponderHubOptions): Promise<Charon> {
  const hubCert = await issueCert(o.dir, `hub-${o.hub}-cert`, o.overlayCa, false);
  const dir = join(o.dir, `hub-${o.hub}`);
  mkdirSync(dir, { recursive: true });
  const charon = await Charon.start(o.ns, { dir });
  const vici = await ViciClient.connect(charon.socketPath);
  try {
    for (const ca of [o.root, o.overlayCa]) await vici.request('load-cert', { type: 'X509', flag: 'CA', data: der(ca.certPem) });
    await vici.request('load-cert', { type: 'X509', flag: 'NONE', data: der(hubCert.certPem) });
    await vici.request('load-key', { type: 'any', data: hubCert.keyPem });
    await vici.request('load-pool', { [`oip-${o.device}`]: { addrs: `${o.oip}/32` } });
    // Names as SCC renders them: <hub><device> without dashes, Conn<device>.
    const squash = (s: string): string => s.replace(/-/g, '');
    await vici.request('load-conn', {
      [`${squash(o.hub)}${squash(o.device)}`]: {
        version: 2, remote_addrs: ['%any'], encap: true, proposals: o.proposals, pools: [`oip-${o.device}`], dpd_delay: '30s',
        local: { auth: 'pubkey', certs: [der(hubCert.certPem)], id: `CN=hub-${o.hub}-cert` },
        remote: { auth: 'pubkey', id: `CN=device-${o.device}-cert` },
        children: { [`Conn${squash(o.device)}`]: { local_ts: ['0.0.0.0/0'], esp_proposals: o.proposals, dpd_action: 'restart' } },
      },
    });
  } catch (err) {
    await charon.stop();
    throw err;
  } finally {
    vici.close();
  }
  return charon;
}
