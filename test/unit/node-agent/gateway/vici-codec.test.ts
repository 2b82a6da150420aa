// The VICI codec against bytes a real swanctl and charon 5.9.8 exchanged
// (test/fixtures/vici/README.md says how they were captured), then against broken input.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage, decodePacket, encodeMessage, encodePacket, MAX_DEPTH, MAX_FRAME, PacketType, ViciFramer,
  ViciProtocolError, viciBytes, type ViciMessage, type ViciPacket,
} from '../../../../node-agent/gateway/vici/codec.js';
import { FILES, packets, payloads, transcript } from './vici-fixtures.js';

const messageOf = (p: ViciPacket | undefined): ViciMessage => {
  if (!p || !('message' in p)) throw new Error(`no message in ${JSON.stringify(p)}`);
  return p.message;
};
const section = (m: ViciMessage, key: string): ViciMessage => m[key] as ViciMessage;
const protocolError = (f: () => unknown, pattern: RegExp): void => {
  let thrown: unknown;
  try {
    f();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(ViciProtocolError);
  expect((thrown as ViciProtocolError).code).toBe('VICI_PROTOCOL');
  expect((thrown as Error).message).toMatch(pattern);
};

describe('captured swanctl and charon 5.9.8 traffic', () => {
  it('version: an empty-message request, answered by daemon and system identity', () => {
    expect(packets('version', 'C')).toEqual([{ type: PacketType.CmdRequest, name: 'version', message: {} }]);
    const [response] = packets('version', 'S');
    expect(response).toMatchObject({ type: PacketType.CmdResponse, message: { daemon: 'charon', version: '5.9.8', sysname: 'Linux', machine: 'x86_64' } });
    expect(encodePacket({ type: PacketType.CmdRequest, name: 'version', message: {} })).toEqual(transcript('version').stream('C'));
  });

  it('load-conn as swanctl sends it: sections, lists, and the same bytes from a plain object', () => {
    const [getConns, loadConn] = packets('load-conns', 'C');
    expect(getConns).toEqual({ type: PacketType.CmdRequest, name: 'get-conns', message: {} });
    expect(loadConn).toMatchObject({ type: PacketType.CmdRequest, name: 'load-conn' });
    const hub = section(messageOf(loadConn), 'hub');
    const cert = (section(hub, 'local').certs as string[])[0]!;
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    // What Warren's gateway will write: booleans and arrays as its config holds them.
    const written = encodePacket({
      type: PacketType.CmdRequest,
      name: 'load-conn',
      message: {
        hub: {
          remote_addrs: ['192.0.2.2'], vips: ['0.0.0.0'], encap: true, proposals: ['aes128-sha256-modp2048'],
          local: { auth: 'pubkey', certs: [cert], id: 'a.warren.test' },
          remote: { auth: 'pubkey', id: 'b.warren.test', eap_id: undefined },
          children: { net: { remote_ts: ['10.98.0.0/24'], esp_proposals: ['aes128-sha256'] } },
        },
      },
    });
    expect(written.subarray(4)).toEqual(payloads(transcript('load-conns'), 'C')[1]);
    expect(packets('load-conns', 'S')).toEqual([
      { type: PacketType.CmdResponse, message: { conns: [] } },
      { type: PacketType.CmdResponse, message: { success: 'yes' } },
    ]);
  });

  it('list-sas: register, command, confirm, one list-sa event with the virtual IP and counters, empty response', () => {
    expect(packets('list-sas', 'C')).toEqual([
      { type: PacketType.EventRegister, name: 'list-sa' },
      { type: PacketType.CmdRequest, name: 'list-sas', message: {} },
    ]);
    const [confirm, event, response] = packets('list-sas', 'S');
    expect(confirm).toEqual({ type: PacketType.EventConfirm });
    expect(response).toEqual({ type: PacketType.CmdResponse, message: {} });
    expect(event).toMatchObject({ type: PacketType.Event, name: 'list-sa' });
    const hub = section(messageOf(event), 'hub');
    expect(hub).toMatchObject({ state: 'ESTABLISHED', 'local-host': '192.0.2.1', 'remote-id': 'b.warren.test', 'local-vips': ['10.99.0.1'] });
    expect(section(hub, 'child-sas')['net-1']).toMatchObject({
      name: 'net', state: 'INSTALLED', mode: 'TUNNEL', encap: 'yes', 'packets-in': '2', 'packets-out': '2',
      'local-ts': ['10.99.0.1/32'], 'remote-ts': ['10.98.0.0/24'],
    });
  });

  it('ike-updown and child-updown: "up = yes" when up, and no "up" key at all when down', () => {
    const events = packets('monitor-sa', 'S').filter((p) => p.type === PacketType.Event);
    expect(events.map((p) => ('name' in p ? p.name : ''))).toEqual(['ike-updown', 'child-updown', 'ike-updown', 'child-updown']);
    const [ikeUp, childUp, ikeDown, childDown] = events.map(messageOf);
    expect(ikeUp!.up).toBe('yes');
    expect(section(ikeUp!, 'hub')).toMatchObject({ state: 'ESTABLISHED', 'local-vips': ['10.99.0.1'] });
    expect(section(ikeUp!, 'hub')['child-sas']).toBeUndefined();
    expect(section(section(childUp!, 'hub'), 'child-sas')['net-1']).toMatchObject({ state: 'INSTALLED' });
    for (const down of [ikeDown!, childDown!]) {
      expect(Object.keys(down)).toEqual(['hub']);
      expect(section(down, 'hub').state).toBe('DELETING');
    }
  });

  it('list-cert: the DER certificate decodes as bytes, not text', () => {
    const certs = packets('list-certs', 'S').filter((p) => p.type === PacketType.Event).map(messageOf);
    expect(certs.map((c) => [c.flag, c.has_privkey])).toEqual([['NONE', 'yes'], ['NONE', undefined], ['CA', undefined]]);
    const der = certs[0]!.data;
    expect(Buffer.isBuffer(der)).toBe(true);
    expect(new X509Certificate(viciBytes(der as Buffer)).subject).toBe('CN=a.warren.test');
    expect(new X509Certificate(der as Buffer).issuer).toBe('CN=warren-test-ca');
  });

  it('errors: success = no with errmsg, CMD_UNKNOWN, EVENT_UNKNOWN', () => {
    expect(packets('load-conn-invalid-proposal', 'S')[1]).toEqual({
      type: PacketType.CmdResponse,
      message: { success: 'no', errmsg: 'invalid value for: proposals, config discarded' },
    });
    expect(packets('unknown-command-and-event', 'C')).toEqual([
      { type: PacketType.CmdRequest, name: 'no-such-command', message: {} },
      { type: PacketType.EventRegister, name: 'no-such-event' },
    ]);
    expect(packets('unknown-command-and-event', 'S')).toEqual([{ type: PacketType.CmdUnknown }, { type: PacketType.EventUnknown }]);
  });

  it('control-log and log events stream during initiate', () => {
    const initiate = packets('initiate', 'S');
    expect(initiate.at(-1)).toEqual({ type: PacketType.CmdResponse, message: { success: 'yes' } });
    const logs = initiate.filter((p) => p.type === PacketType.Event).map(messageOf);
    expect(logs.length).toBeGreaterThan(20);
    expect(logs.map((m) => m.msg)).toContain("CHILD_SA net{1} established with SPIs 0fa47ab1_i 4ccbfd07_o and TS 10.99.0.1/32 === 10.98.0.0/24");
    const log = packets('log', 'S').filter((p) => p.type === PacketType.Event).map(messageOf);
    expect(log[0]).toEqual({ group: 'CFG', level: '1', thread: '9', msg: "vici initiate CHILD_SA 'net'" });
  });

  it('every captured frame re-encodes to the same bytes, and every stream to the same stream', () => {
    let frames = 0;
    for (const name of FILES) {
      const t = transcript(name);
      for (const dir of ['C', 'S'] as const) {
        const reencoded = payloads(t, dir).map((p) => {
          frames++;
          const again = encodePacket(decodePacket(p));
          expect(again.subarray(4)).toEqual(p);
          return again;
        });
        expect(Buffer.concat(reencoded)).toEqual(t.stream(dir));
      }
    }
    expect(frames).toBeGreaterThan(120);
  });
});

describe('framing', () => {
  // A fixed-seed generator: chunk boundaries vary across the stream but not across runs.
  function* sizes(seed: number): Generator<number> {
    let x = seed;
    for (;;) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      yield 1 + (x % 97);
    }
  }

  it('the captures themselves split frames across reads and put several frames in one read', () => {
    const t = transcript('unknown-command-and-event');
    expect(t.chunks.filter((c) => c.dir === 'S').map((c) => c.bytes.toString('hex'))).toEqual(['00000001', '02', '0000000106']);
    const log = transcript('log').chunks.filter((c) => c.dir === 'S');
    expect(payloads(transcript('log'), 'S').length).toBeGreaterThan(log.length);
  });

  it('gives the same frames for one chunk, single bytes, and arbitrary chunk sizes', () => {
    for (const name of FILES) {
      const t = transcript(name);
      for (const dir of ['C', 'S'] as const) {
        const stream = t.stream(dir);
        const expected = payloads(t, dir);
        const cut = (next: () => number): Buffer[] => {
          const framer = new ViciFramer();
          const out: Buffer[] = [];
          for (let at = 0; at < stream.length;) {
            const n = next();
            out.push(...framer.push(stream.subarray(at, at + n)));
            at += n;
          }
          expect(framer.midFrame).toBe(false);
          return out;
        };
        expect(cut(() => stream.length)).toEqual(expected);
        expect(cut(() => 1)).toEqual(expected);
        const gen = sizes(name.length * 7 + dir.charCodeAt(0));
        expect(cut(() => gen.next().value as number)).toEqual(expected);
      }
    }
  });

  it('an empty chunk is harmless; a stream cut mid-frame is reported as such', () => {
    const framer = new ViciFramer();
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    const frame = transcript('version').stream('S');
    expect(framer.push(frame.subarray(0, 2))).toEqual([]);
    expect(framer.midFrame).toBe(true);
    expect(framer.push(frame.subarray(2, 10))).toEqual([]);
    expect(framer.midFrame).toBe(true);
    expect(framer.push(frame.subarray(10))).toHaveLength(1);
    expect(framer.midFrame).toBe(false);
  });

  it('refuses an oversized frame at its header, before any body arrives, and stays failed', () => {
    const header = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const atLimit = new ViciFramer();
    expect(atLimit.push(header(MAX_FRAME))).toEqual([]);
    expect(atLimit.midFrame).toBe(true);
    for (const n of [MAX_FRAME + 1, 0xffffffff]) {
      const framer = new ViciFramer();
      protocolError(() => framer.push(header(n)), /frame of \d+ bytes announced, more than 524288/);
      protocolError(() => framer.push(transcript('version').stream('S')), /announced/);
    }
  });
});

describe('malformed input gives ViciProtocolError and nothing else', () => {
  const KV = (name: string, value: string): Buffer => {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(v.length);
    return Buffer.concat([Buffer.of(3, n.length), n, len, v]);
  };

  it('names every kind of breakage', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['empty packet', Buffer.alloc(0), /truncated: packet type/],
      ['unknown packet type', Buffer.of(8), /unknown packet type 8/],
      ['name longer than the packet', Buffer.of(0, 9, 0x61), /truncated: name of 9 bytes/],
      ['value longer than the packet', Buffer.concat([Buffer.of(1), KV('k', 'value').subarray(0, -2)]), /truncated: value of 5 bytes/],
      ['value length cut', Buffer.of(1, 3, 1, 0x6b, 0), /truncated: value length/],
      ['unknown element type', Buffer.of(1, 9), /unknown element type 9 at byte 0/],
      ['section end without section', Buffer.of(1, 2), /section end at byte 0 without a section open/],
      ['section left open', Buffer.of(1, 1, 1, 0x73), /ends with 1 section\(s\) open/],
      ['list left open', Buffer.of(1, 4, 1, 0x6c), /ends inside a list/],
      ['item outside a list', Buffer.of(1, 5, 0, 0), /list item at byte 0 outside a list/],
      ['list end without list', Buffer.of(1, 6), /list end at byte 0 without a list open/],
      ['key-value inside a list', Buffer.concat([Buffer.of(1, 4, 1, 0x6c), KV('k', 'v'), Buffer.of(6)]), /element type 3 at byte 3 inside a list/],
      ['nested list', Buffer.of(1, 4, 1, 0x6c, 4, 1, 0x6d, 6, 6), /element type 4 at byte 3 inside a list/],
      ['duplicate key', Buffer.concat([Buffer.of(1), KV('k', 'a'), KV('k', 'b')]), /duplicate key "k"/],
      ['bytes after EVENT_CONFIRM', Buffer.of(5, 0), /packet type 5 carries 1 unexpected byte/],
      ['message after EVENT_REGISTER', Buffer.concat([Buffer.of(3, 1, 0x65), KV('k', 'v')]), /packet type 3 carries 6 unexpected byte/],
      ['name not UTF-8', Buffer.of(7, 2, 0xc3, 0x28), /name at byte 2 is not UTF-8/],
      ['nesting beyond MAX_DEPTH', Buffer.concat([Buffer.of(1), ...Array.from({ length: MAX_DEPTH + 1 }, () => Buffer.of(1, 1, 0x73))]), /nest deeper than 64/],
    ];
    for (const [what, payload, pattern] of cases) {
      try {
        decodePacket(payload);
      } catch (err) {
        expect(err, what).toBeInstanceOf(ViciProtocolError);
        expect((err as Error).message, what).toMatch(pattern);
        continue;
      }
      throw new Error(`${what}: decoded without error`);
    }
    const deepest = Buffer.concat([...Array.from({ length: MAX_DEPTH }, () => Buffer.of(1, 1, 0x73)), ...Array.from({ length: MAX_DEPTH }, () => Buffer.of(2))]);
    expect(() => decodeMessage(deepest)).not.toThrow();
  });

  it('every truncation and every single-byte corruption of real packets decodes or throws ViciProtocolError', () => {
    const samples = [
      ...payloads(transcript('list-sas'), 'S'),
      ...payloads(transcript('load-conns'), 'C'),
      ...payloads(transcript('monitor-sa'), 'S').slice(2, 3),
      ...payloads(transcript('list-certs'), 'S').slice(1, 2),
    ];
    let refused = 0;
    const attempt = (bytes: Buffer): void => {
      try {
        decodePacket(bytes);
      } catch (err) {
        if (!(err instanceof ViciProtocolError)) throw err;
        refused++;
      }
    };
    for (const p of samples) {
      for (let k = 0; k < p.length; k++) attempt(p.subarray(0, k));
      for (let i = 0; i < p.length; i++) {
        for (const v of [0x00, 0x01, 0x02, 0x05, 0x07, 0xff, p[i]! ^ 0x80]) {
          const bad = Buffer.from(p);
          bad[i] = v;
          attempt(bad);
        }
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });
});

describe('encoding plain objects', () => {
  it('matches the encoding example of the VICI README byte for byte', () => {
    const s = (t: string) => [...t].map((c) => c.charCodeAt(0));
    const readme = Buffer.from([
      3, 4, ...s('key1'), 0, 6, ...s('value1'),
      1, 8, ...s('section1'),
      1, 11, ...s('sub-section'),
      3, 4, ...s('key2'), 0, 6, ...s('value2'),
      2,
      4, 5, ...s('list1'),
      5, 0, 5, ...s('item1'),
      5, 0, 5, ...s('item2'),
      6,
      2,
    ]);
    const msg = { key1: 'value1', section1: { 'sub-section': { key2: 'value2' }, list1: ['item1', 'item2'] } };
    expect(encodeMessage(msg)).toEqual(readme);
    expect(decodeMessage(readme)).toEqual(msg);
  });

  it('turns numbers, bigints and booleans into the strings charon parses, keeps bytes, skips undefined', () => {
    const der = Buffer.from([0x30, 0x82, 0x01, 0xff]);
    const bytes = encodeMessage({ timeout: 5000, big: 2n ** 40n, yes: true, no: false, data: der, absent: undefined, list: [1, 'a', false] });
    expect(decodeMessage(bytes)).toEqual({ timeout: '5000', big: '1099511627776', yes: 'yes', no: 'no', data: der, list: ['1', 'a', 'no'] });
  });

  it('keeps text that merely looks odd as text, and a byte-order mark as content', () => {
    const msg = { bom: '\ufeffx', nul: 'a\0b', emoji: 'ok ✓' };
    expect(decodeMessage(encodeMessage(msg))).toEqual(msg);
    expect(viciBytes('\ufeffx')).toEqual(Buffer.from([0xef, 0xbb, 0xbf, 0x78]));
  });

  it('a key named __proto__ stays an own key and pollutes nothing', () => {
    const wire = Buffer.concat([Buffer.of(1, 9), Buffer.from('__proto__'), Buffer.of(3, 1, 0x78, 0, 1, 0x31), Buffer.of(2)]);
    const decoded = decodeMessage(wire);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.keys(decoded)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(encodeMessage(decoded)).toEqual(wire);
  });

  it('refuses what the wire cannot carry, with ViciProtocolError', () => {
    protocolError(() => encodeMessage({ ['n'.repeat(256)]: 'v' }), /is 256 bytes, more than 255/);
    expect(encodeMessage({ ['n'.repeat(255)]: 'v' })).toHaveLength(1 + 1 + 255 + 2 + 1);
    protocolError(() => encodeMessage({ k: 'v'.repeat(65536) }), /value of "k" is 65536 bytes, more than 65535/);
    protocolError(() => encodeMessage({ l: ['v'.repeat(65536)] }), /value of "l" is 65536 bytes/);
    expect(encodeMessage({ k: Buffer.alloc(65535) })).toHaveLength(1 + 1 + 1 + 2 + 65535);
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, Buffer.alloc(65535)]));
    protocolError(() => encodeMessage(big), /exceeds the 524288-byte frame limit/);
    protocolError(() => encodePacket({ type: PacketType.CmdRequest, name: 'load-cert', message: big }), /frame limit/);
    protocolError(() => encodeMessage({ n: Number.NaN }), /value of "n" cannot be encoded: NaN/);
    protocolError(() => encodeMessage({ n: null } as never), /cannot be encoded: object/);
    protocolError(() => encodeMessage({ l: [['nested']] } as never), /value of "l" cannot be encoded: object/);
    protocolError(() => encodeMessage({ d: new Date(0) } as never), /cannot be encoded: object/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    protocolError(() => encodeMessage(cyclic as never), /nest deeper than 64 \(a cycle\?\)/);
  });
});
