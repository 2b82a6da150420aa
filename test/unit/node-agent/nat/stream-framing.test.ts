import { describe, expect, it } from 'vitest';
import { StreamFramer, toStream } from '../../../../node-agent/nat/stream-framing.js';
import { encodeChannelData, encodeRequest, refreshRequest } from '../../../../node-agent/nat/turn.js';
import { newTransactionId } from '../../../../node-agent/nat/stun.js';
import { StunDecodeError } from '../../../../node-agent/nat/errors.js';

const stun = encodeRequest(refreshRequest(newTransactionId(), 600));
const channel = encodeChannelData(0x4001, Buffer.from('hello')); // 9 bytes, 12 on a stream

describe('TURN over a byte stream', () => {
  it('pads ChannelData to 4 bytes and leaves STUN as it is', () => {
    expect(toStream(channel)).toHaveLength(12);
    expect(toStream(channel).subarray(0, 9)).toEqual(channel);
    expect(toStream(stun)).toBe(stun);
    const four = encodeChannelData(0x4001, Buffer.from('four'));
    expect(toStream(four)).toBe(four);
  });

  it('cuts frames out of chunks however the stream splits them', () => {
    const stream = Buffer.concat([stun, toStream(channel), stun, toStream(encodeChannelData(0x4002, Buffer.alloc(0)))]);
    for (const size of [1, 3, 7, 20, stream.length]) {
      const framer = new StreamFramer();
      const frames: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) frames.push(...framer.push(stream.subarray(i, i + size)));
      expect(frames.map((f) => f.length), `chunks of ${size}`).toEqual([stun.length, 12, stun.length, 4]);
      expect(frames[0]).toEqual(stun);
      expect(frames[1]!.subarray(0, 9)).toEqual(channel);
      expect(framer.pending).toBe(0);
    }
  });

  it('keeps a frame that is not complete yet', () => {
    const framer = new StreamFramer();
    expect(framer.push(stun.subarray(0, 25))).toEqual([]);
    expect(framer.pending).toBe(25);
    expect(framer.push(stun.subarray(25))).toEqual([stun]);
  });

  it('refuses bytes that start neither STUN nor ChannelData: the stream\'s framing is lost', () => {
    // A TLS alert (0x15: a TLS port spoken to in plain TCP).
    expect(() => new StreamFramer().push(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))).toThrow(StunDecodeError);
    expect(() => new StreamFramer().push(Buffer.from([0x80, 0, 0, 4, 1, 2, 3, 4]))).toThrow(/neither STUN nor ChannelData \(first byte 0x80\)/);
  });
});
