// Pure builders for OVSDB transactions on the Open_vSwitch schema (RFC 7047 section 5
// for the operations, ovs-vswitchd.conf.db(5) for the tables).
export type Atom = string | number | boolean | ['uuid', string] | ['named-uuid', string];
export type Value = Atom | ['set', Atom[]] | ['map', [Atom, Atom][]];
export type Condition = [string, '==' | '!=' | 'includes' | 'excludes', Value];
export type Operation = Record<string, unknown> & { op: string };

export function ovsMap(entries: Record<string, string>): ['map', [string, string][]] {
  return ['map', Object.entries(entries)];
}

export interface PortSpec {
  bridge: string;
  name: string;
  externalIds: Record<string, string>;
  /** MTU for the bridge's own interface, which carries the gateway address. */
  bridgeMtu: number;
}

/**
 * Adds a system port (the host end of a veth) to an existing bridge and tags it. The
 * leading `wait` aborts the whole transaction when the bridge is missing, instead of
 * leaving orphan rows; a port of the same name makes it fail on the name index.
 */
export function attachPortOps(p: PortSpec): Operation[] {
  return [
    { op: 'wait', table: 'Bridge', timeout: 0, where: [['name', '==', p.bridge]], columns: ['name'], until: '==', rows: [{ name: p.bridge }] },
    { op: 'insert', table: 'Interface', 'uuid-name': 'iface', row: { name: p.name, external_ids: ovsMap(p.externalIds) } },
    { op: 'insert', table: 'Port', 'uuid-name': 'port', row: { name: p.name, interfaces: ['named-uuid', 'iface'] } },
    { op: 'mutate', table: 'Bridge', where: [['name', '==', p.bridge]], mutations: [['ports', 'insert', ['set', [['named-uuid', 'port']]]]] },
    { op: 'update', table: 'Interface', where: [['name', '==', p.bridge]], row: { mtu_request: p.bridgeMtu } },
  ];
}

export function selectPortOps(name: string): Operation[] {
  return [{ op: 'select', table: 'Port', where: [['name', '==', name]], columns: ['_uuid'] }];
}

export function selectBridgeOps(name: string): Operation[] {
  return [{ op: 'select', table: 'Bridge', where: [['name', '==', name]], columns: ['_uuid', 'ports'] }];
}

/**
 * Removes a bridge (ovs-vsctl del-br: its rows are collected once unreferenced) only while
 * its ports are still `ports`: a port added meanwhile makes the leading `wait` fail.
 */
export function removeBridgeOps(bridgeUuid: string, ports: Value): Operation[] {
  return [
    { op: 'wait', table: 'Bridge', timeout: 0, where: [['_uuid', '==', ['uuid', bridgeUuid]]], columns: ['ports'], until: '==', rows: [{ ports }] },
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['set', [['uuid', bridgeUuid]]]]] },
  ];
}

/** Detaching from every bridge that lists it; the unreferenced Port and Interface rows are then collected. */
export function detachPortOps(portUuid: string): Operation[] {
  return [{ op: 'mutate', table: 'Bridge', where: [['ports', 'includes', ['uuid', portUuid]]], mutations: [['ports', 'delete', ['set', [['uuid', portUuid]]]]] }];
}

/** What ovs-vsctl does to learn when ovs-vswitchd has applied a change: bump next_cfg and read it back. */
export function bumpConfigOps(): Operation[] {
  return [
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
    { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
  ];
}

export interface OpResult {
  error?: string;
  details?: string;
  rows?: Record<string, unknown>[];
  count?: number;
  uuid?: ['uuid', string];
}

/** The first failure in a transaction reply, as "error: details", or undefined when it committed. */
export function transactionFailure(ops: readonly Operation[], results: readonly (OpResult | null)[]): string | undefined {
  for (const [i, r] of results.entries()) {
    if (r && r.error) return `${i < ops.length ? `${ops[i]!.op} ${String(ops[i]!.table ?? '')}` : 'commit'}: ${r.error}${r.details ? ` (${r.details})` : ''}`;
  }
  return undefined;
}
