// Per hub, what the tunnel is doing, folded from charon's VICI event stream (ike-updown,
// child-updown, ike-rekey, child-rekey) and, once at (re)connection, from list-sas: never
// polled for state. Pure: events in, state out.
import { hubOfConnection } from './ipsec-plan.js';
import type { ViciMessage, ViciValue } from './vici/codec.js';

export type IkeState = 'down' | 'connecting' | 'established';

export interface HubSaState {
  hub: string;
  ike: IkeState;
  child: 'down' | 'installed';
  /** The virtual IP the hub gave us: our data OIP for this hub. */
  oip?: string;
  establishedAt?: string;
  lastRekey?: string;
  bytesIn: number;
  bytesOut: number;
}

export type SaStates = ReadonlyMap<string, HubSaState>;

const initial = (hub: string): HubSaState => ({ hub, ike: 'connecting', child: 'down', bytesIn: 0, bytesOut: 0 });

const text = (v: ViciValue | ViciMessage | ViciValue[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: ViciValue | ViciMessage | ViciValue[] | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const section = (v: ViciValue | ViciMessage | ViciValue[] | undefined): ViciMessage | undefined =>
  v !== undefined && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) ? (v as ViciMessage) : undefined;

/** The hubs the gateway wants: their states, new ones connecting, unwanted ones gone. */
export function withHubs(states: SaStates, hubs: readonly string[]): Map<string, HubSaState> {
  return new Map(hubs.map((h) => [h, states.get(h) ?? initial(h)]));
}

/** One IKE_SA section of an event or of list-sas, keyed by connection name, as a hub's state. */
function fromIkeSa(prev: HubSaState, sa: ViciMessage, up: boolean, now: Date): HubSaState {
  if (!up) return { ...prev, ike: 'connecting', child: 'down', oip: undefined, establishedAt: undefined };
  const state = text(sa.state);
  const children = Object.values(section(sa['child-sas']) ?? {}).map(section).filter((c): c is ViciMessage => c !== undefined);
  const installed = children.filter((c) => text(c.state) === 'INSTALLED');
  const sum = (key: string): number => installed.reduce((n, c) => n + Number(text(c[key]) ?? 0), 0);
  return {
    ...prev,
    ike: state === 'ESTABLISHED' ? 'established' : 'connecting',
    child: installed.length ? 'installed' : prev.child,
    oip: list(sa['local-vips'])[0] ?? prev.oip,
    establishedAt: prev.ike === 'established' && prev.establishedAt ? prev.establishedAt : now.toISOString(),
    bytesIn: installed.length ? sum('bytes-in') : prev.bytesIn,
    bytesOut: installed.length ? sum('bytes-out') : prev.bytesOut,
  };
}

/**
 * Pure: the states after one event. `ike-updown`/`child-updown` carry `up = yes` when up
 * and no `up` key at all when down (charon 5.9.8); the section names are connection names.
 */
export function applyEvent(states: SaStates, event: string, msg: ViciMessage, now: Date): Map<string, HubSaState> {
  const next = new Map(states);
  const up = text(msg.up) === 'yes';
  for (const [conn, value] of Object.entries(msg)) {
    const hub = hubOfConnection(conn);
    const sa = section(value);
    const prev = hub === undefined ? undefined : next.get(hub);
    if (!prev || !sa) continue;
    switch (event) {
      case 'ike-updown':
        next.set(hub!, fromIkeSa(prev, sa, up, now));
        break;
      case 'child-updown':
        next.set(hub!, up ? fromIkeSa(prev, sa, true, now) : { ...prev, child: 'down' });
        break;
      case 'ike-rekey':
      case 'child-rekey':
        next.set(hub!, { ...fromIkeSa(prev, section(sa.new) ?? sa, true, now), lastRekey: now.toISOString() });
        break;
    }
  }
  return next;
}

/** Pure: the states as list-sas shows them (at start, after charon or VICI came back, and for byte counts). */
export function fromListSas(states: SaStates, sas: readonly ViciMessage[], now: Date): Map<string, HubSaState> {
  const next = new Map<string, HubSaState>([...states].map(([h, s]) => [h, { ...s, ike: 'connecting', child: 'down', oip: undefined }]));
  for (const entry of sas) {
    for (const [conn, value] of Object.entries(entry)) {
      const hub = hubOfConnection(conn);
      const sa = section(value);
      const prev = hub === undefined ? undefined : states.get(hub);
      if (prev && sa) next.set(hub!, fromIkeSa({ ...prev }, sa, true, now));
    }
  }
  return next;
}
