// STUN and ChannelData over a byte stream (TCP or TLS to the TURN server, RFC 8656
// section 3.1 and 12.5): no datagram boundaries, so each message is cut out of the stream
// by its own length. A STUN message is its 20-byte header plus the length in bytes 2-3; a
// ChannelData frame is 4 bytes plus its length, padded to a multiple of 4 (required over
// streams). Pure: the socket is stream-port.ts's.
import { StunDecodeError } from './errors.js';

const STUN_HEADER = 20;
const CHANNEL_HEADER = 4;

/** The whole frame's length when `head` holds at least its first 4 bytes; throws on bytes that start neither kind. */
function frameLength(head: Buffer): number {
  const first = head[0]!;
  const length = head.readUInt16BE(2);
  // RFC 7983: STUN starts 0-3, ChannelData 64-79 (channel numbers 0x4000-0x4FFF).
  if (first <= 3) return STUN_HEADER + length;
  if (first >= 0x40 && first <= 0x4f) return CHANNEL_HEADER + ((length + 3) & ~3);
  throw new StunDecodeError(`the TURN stream carries neither STUN nor ChannelData (first byte 0x${first.toString(16)})`);
}

/** Frames as they complete; what is left waits for the next chunk. */
export class StreamFramer {
  private buffered: Buffer = Buffer.alloc(0);

  /** Every frame `chunk` completes, in order. A stream that goes wrong throws: its framing is lost for good. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (this.buffered.length >= CHANNEL_HEADER) {
      const length = frameLength(this.buffered);
      if (this.buffered.length < length) break;
      frames.push(Buffer.from(this.buffered.subarray(0, length)));
      this.buffered = this.buffered.subarray(length);
    }
    return frames;
  }

  /** Bytes of a frame not yet complete. */
  get pending(): number {
    return this.buffered.length;
  }
}

/** What goes on the stream for one datagram's worth: ChannelData padded to 4 bytes, STUN as it is (always a multiple of 4). */
export function toStream(frame: Buffer): Buffer {
  const first = frame[0];
  if (first === undefined || first < 0x40 || first > 0x4f || frame.length % 4 === 0) return frame;
  return Buffer.concat([frame, Buffer.alloc(4 - (frame.length % 4))]);
}
