// The frames between the resident server and warren-spawner (spawner.c reads and writes
// them; the integration test runs the two together).
import { describe, expect, it } from 'vitest';
import { decodeReplies, encodeRequest } from '../../../../cni/resident/spawner.js';

function replyFrame(id: number, kind: number, value: number, out: string, err: string): Buffer {
  const body = Buffer.concat([Buffer.from(out), Buffer.from(err)]);
  const head = Buffer.alloc(20);
  head.writeUInt32LE(16 + body.length, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt32LE(kind, 8);
  head.writeUInt32LE(value, 12);
  head.writeUInt32LE(Buffer.byteLength(out), 16);
  return Buffer.concat([head, body]);
}

describe('spawner frames', () => {
  it('lays a request out as spawner.c reads it: length, id, timeout, counts, NUL-terminated strings, then the input', () => {
    const f = encodeRequest(7, ['ip', '-batch', '-'], { PATH: '/bin', CNI_COMMAND: 'ADD' }, 'link set lo up\n', 250);
    expect(f.readUInt32LE(0)).toBe(f.length - 4);
    expect([f.readUInt32LE(4), f.readUInt32LE(8), f.readUInt32LE(12), f.readUInt32LE(16)]).toEqual([7, 250, 3, 2]);
    expect(f.subarray(20).toString()).toBe('ip\0-batch\0-\0PATH=/bin\0CNI_COMMAND=ADD\0link set lo up\n');
    // Multi-byte characters are counted in bytes.
    const u = encodeRequest(1, ['echo', 'é'], {}, 'ü');
    expect(u.readUInt32LE(0)).toBe(u.length - 4);
  });

  it('splits whole replies off a stream that arrives in any pieces, keeping the rest for later', () => {
    const stream = Buffer.concat([replyFrame(1, 0, 0, 'out', ''), replyFrame(2, 1, 9, '', 'killed'), replyFrame(3, 2, 2, '', 'ip: No such file')]);
    for (const cut of [1, 4, 19, 24, 30, stream.length - 1]) {
      const first = decodeReplies(stream.subarray(0, cut));
      const second = decodeReplies(Buffer.concat([first.rest, stream.subarray(cut)]));
      const all = [...first.replies, ...second.replies];
      expect(all.map((r) => [r.id, r.kind, r.value, r.stdout, r.stderr])).toEqual([[1, 0, 0, 'out', ''], [2, 1, 9, '', 'killed'], [3, 2, 2, '', 'ip: No such file']]);
      expect(second.rest.length).toBe(0);
    }
  });
});
