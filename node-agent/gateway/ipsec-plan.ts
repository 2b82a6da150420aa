// What the gateway's charon must hold to be an SD-EWAN device (../shared/SDEWAN.md §2.3 and
// §7): the device certificate and key, the root and overlay CAs as trust anchors, and one
// IKEv2 connection per hub, initiated by us, asking for a virtual IP (the hub hands out
// exactly one: our data OIP for that hub), with the hub's side 0.0.0.0/0. Pure: the VICI
// messages come out of the inputs; gateway.ts sends them.
import type { ViciInput } from './vici/codec.js';

export interface DeviceIdentity {
  /** The device name SCC knows; the certificate's subject is CN=device-<name>-cert. */
  device: string;
  certDer: Buffer;
  keyPem: string;
  /** Trust anchors: SD-EWAN's root CA and the overlay CA. */
  caDers: Buffer[];
}

export interface HubTarget {
  name: string;
  /** The hub's public address (SCC: the hub's status.Ip, one of spec.publicIps). */
  address: string;
}

export interface IpsecSettings {
  /** The overlay's proposals, `<enc>-<hash>-<modpN>`, for IKE and ESP alike (SCC pushes the same list to both). */
  proposals: string[];
  /**
   * Seconds between liveness checks of a hub. SD-EWAN's 30 s (plus IKEv2's retransmissions)
   * can leave a dead hub undetected for minutes; the gateway asks for much less.
   */
  dpdSeconds: number;
  /** kernel-libipsec carries only UDP-encapsulated ESP: forced where it is the data path. */
  forceEncap: boolean;
}

/** SD-EWAN's identities are the certificates' subjects (certificate_objectmanager.go). */
export const deviceIdentity = (device: string): string => `CN=device-${device}-cert`;
export const hubIdentity = (hub: string): string => `CN=hub-${hub}-cert`;

/** One IKE connection per hub; its only child carries the same name. */
export const hubConnection = (hub: string): string => `hub-${hub}`;

/** The hub name of a connection name, or undefined for a connection that is not ours. */
export function hubOfConnection(name: string): string | undefined {
  return name.startsWith('hub-') && name.length > 4 ? name.slice(4) : undefined;
}

/** The credentials, in the order charon needs them: anchors, our certificate, our key. */
export function credentialMessages(id: DeviceIdentity): { command: 'load-cert' | 'load-key'; message: ViciInput }[] {
  return [
    ...id.caDers.map((data) => ({ command: 'load-cert' as const, message: { type: 'X509', flag: 'CA', data } })),
    { command: 'load-cert', message: { type: 'X509', flag: 'NONE', data: id.certDer } },
    { command: 'load-key', message: { type: 'any', data: id.keyPem } },
  ];
}

/**
 * The connection to one hub. Lifetimes as SD-EWAN's CNF sets them (IKE 3 h with
 * reauthentication, CHILD 1 h less a 9 min margin), so that whichever side rekeys first,
 * the other agrees; keyingtries 0 (forever) as the CNF's `%forever`: a hub that is down now
 * is tried until it is back.
 */
export function hubConnMessage(id: DeviceIdentity, hub: HubTarget, s: IpsecSettings): ViciInput {
  const name = hubConnection(hub.name);
  return {
    [name]: {
      version: 2,
      remote_addrs: [hub.address],
      vips: ['0.0.0.0'],
      proposals: s.proposals,
      encap: s.forceEncap,
      dpd_delay: `${s.dpdSeconds}s`,
      keyingtries: 0,
      reauth_time: '3h',
      rekey_time: '0',
      over_time: '9m',
      local: { auth: 'pubkey', certs: [id.certDer], id: deviceIdentity(id.device) },
      remote: { auth: 'pubkey', id: hubIdentity(hub.name) },
      children: {
        [name]: {
          remote_ts: ['0.0.0.0/0'],
          esp_proposals: s.proposals,
          rekey_time: '51m',
          life_time: '60m',
          dpd_action: 'restart',
          close_action: 'restart',
          start_action: 'start',
        },
      },
    },
  };
}

/** Pure: what to unload (connections charon holds for hubs no longer wanted). */
export function staleConnections(loaded: readonly string[], hubs: readonly HubTarget[]): string[] {
  const wanted = new Set(hubs.map((h) => hubConnection(h.name)));
  return loaded.filter((c) => hubOfConnection(c) !== undefined && !wanted.has(c));
}
