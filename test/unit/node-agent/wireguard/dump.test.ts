// The dump parser on output captured from wireguard-go v0.0.20220316 / wg v1.0.20210914
// on this machine (throwaway keys, kept unredacted on purpose).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DumpParseError, parseWgDump } from '../../../../node-agent/wireguard/dump.js';

const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

describe('parseWgDump', () => {
  it('reads an interface with configured, learned and bare peers', () => {
    const d = parseWgDump(fixture('wg-dump-node-a.txt'));
    expect(d.iface).toEqual({ publicKey: 'ZGnef1BzP8Lv92I0TLHjUHMmtNWkqjDVrtpmI9Bl9RU=', listenPort: 51820, fwmark: undefined });
    expect(d.peers).toEqual([
      {
        publicKey: '3TZn6WXlYl2YQGizZ1TvREbHHLwqWnq0nl31NHGi8zU=', hasPresharedKey: false, endpoint: '192.0.2.2:51821',
        allowedIps: ['10.10.0.2/32', '10.244.2.0/24'], latestHandshake: 1795442875, rxBytes: 988, txBytes: 1224, keepaliveSeconds: 25,
      },
      {
        publicKey: 'WZ7MlvKmRHGG4MoCeMiunnlCPFJ2U95nrEeMS0tDFQw=', hasPresharedKey: true, endpoint: '[2001:db8::7]:51900',
        allowedIps: ['10.10.0.3/32', '10.244.3.0/24', 'fd00:3::/64'], latestHandshake: 0, rxBytes: 0, txBytes: 0, keepaliveSeconds: 0,
      },
      {
        publicKey: 'd59KfsRrchsS4a0JHSxdR7HBqVc3ByUPj5zJAATbi1o=', hasPresharedKey: false, endpoint: undefined,
        allowedIps: [], latestHandshake: 0, rxBytes: 0, txBytes: 0, keepaliveSeconds: 0,
      },
    ]);
  });

  it('reads the endpoint the responder learned from the initiator', () => {
    const d = parseWgDump(fixture('wg-dump-node-b.txt'));
    expect(d.peers[0]!.endpoint).toBe('192.0.2.1:51820');
    expect(d.peers[0]!.keepaliveSeconds).toBe(0);
  });

  it('reads a fresh device: no key yet, a random port', () => {
    expect(parseWgDump(fixture('wg-dump-fresh.txt'))).toEqual({ iface: { publicKey: undefined, listenPort: 52184, fwmark: undefined }, peers: [] });
  });

  it('reads a hex fwmark', () => {
    expect(parseWgDump('(none)\t(none)\t55227\t0x1234\n').iface.fwmark).toBe(0x1234);
  });

  it('never keeps the private key', () => {
    const text = fixture('wg-dump-node-a.txt');
    const privateKey = text.split('\t')[0]!;
    expect(JSON.stringify(parseWgDump(text))).not.toContain(privateKey);
  });

  it('refuses what is not a dump', () => {
    expect(() => parseWgDump('')).toThrow(DumpParseError);
    expect(() => parseWgDump('interface: wg0\n  public key: x\n')).toThrow(/interface line has 1 fields/);
    expect(() => parseWgDump('a\tb\t1\toff\npeer\tonly\n')).toThrow(/peer line has 2 fields/);
    expect(() => parseWgDump('a\tb\tport\toff\n')).toThrow(/listen-port "port"/);
  });
});
