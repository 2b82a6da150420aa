// `wg show IF dump`: wg's tab-separated machine format (wg(8), "show ... dump"). The
// same text comes from the kernel module and from wireguard-go. The first line is the
// interface and starts with its private key: the parser drops it at once, so the key
// never reaches a structure that could be logged.
import { WarrenError } from '../../lib/errors.js';
import type { Runner } from '../../lib/runner.js';

export class DumpParseError extends WarrenError {
  constructor(message: string) {
    super('WIREGUARD_DUMP_UNPARSABLE', message);
  }
}

export interface DumpInterface {
  /** Undefined while no private key is set. */
  publicKey: string | undefined;
  listenPort: number;
  /** Undefined when off. */
  fwmark: number | undefined;
}

export interface DumpPeer {
  publicKey: string;
  hasPresharedKey: boolean;
  /** "ip:port", "[ip6]:port"; undefined until configured or learned from a packet. */
  endpoint: string | undefined;
  /** As wg prints them: canonical CIDRs, host bits cleared. */
  allowedIps: string[];
  /** Seconds since the epoch of the last handshake; 0 means never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; 0 means off. */
  keepaliveSeconds: number;
}

export interface WgDump {
  iface: DumpInterface;
  peers: DumpPeer[];
}

const NONE = '(none)';

export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const first = lines.shift();
  if (first === undefined) throw new DumpParseError('empty dump');
  return { iface: parseInterfaceLine(first), peers: lines.map(parsePeerLine) };
}

function parseInterfaceLine(line: string): DumpInterface {
  const f = line.split('\t');
  if (f.length !== 4) throw new DumpParseError(`interface line has ${f.length} fields, expected 4`);
  const [, publicKey, port, fwmark] = f as [string, string, string, string];
  return {
    publicKey: publicKey === NONE ? undefined : publicKey,
    listenPort: integer(port, 'listen-port'),
    fwmark: fwmark === 'off' ? undefined : integer(fwmark, 'fwmark'),
  };
}

function parsePeerLine(line: string): DumpPeer {
  const f = line.split('\t');
  if (f.length !== 8) throw new DumpParseError(`peer line has ${f.length} fields, expected 8: ${line}`);
  const [publicKey, psk, endpoint, allowed, handshake, rx, tx, keepalive] = f as [string, string, string, string, string, string, string, string];
  return {
    publicKey,
    hasPresharedKey: psk !== NONE,
    endpoint: endpoint === NONE ? undefined : endpoint,
    allowedIps: allowed === NONE ? [] : allowed.split(','),
    latestHandshake: integer(handshake, 'latest-handshake'),
    rxBytes: integer(rx, 'transfer-rx'),
    txBytes: integer(tx, 'transfer-tx'),
    keepaliveSeconds: keepalive === 'off' ? 0 : integer(keepalive, 'persistent-keepalive'),
  };
}

// Number() also reads wg's "0x..." fwmark.
function integer(text: string, field: string): number {
  const n = Number(text);
  if (text === '' || !Number.isSafeInteger(n) || n < 0) throw new DumpParseError(`${field} ${JSON.stringify(text)} is not a whole number`);
  return n;
}

/** Reads and parses the device's dump (through the runner, so inside the node's netns). */
export async function readWgDump(runner: Runner, ifname: string): Promise<WgDump> {
  const { stdout } = await runner('wg', ['show', ifname, 'dump']);
  return parseWgDump(stdout);
}
