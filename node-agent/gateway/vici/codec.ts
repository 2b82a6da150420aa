// strongSwan's VICI wire format (src/libcharon/plugins/vici/README.md), pure encode/decode.
// Three layers: a frame is a 32-bit big-endian length and that many bytes ("Transport
// protocol"); a packet is a type byte, a name for the named types, then a message ("Packet
// layer"); a message is a flat run of elements that open and close sections and lists
// ("Message format"). Everything read from the socket is bounded before it is allocated,
// and every malformation is a ViciProtocolError, so a confused or hostile peer costs a
// closed connection, never a crash or unbounded memory.
import { WarrenError } from '../../../lib/errors.js';

export class ViciProtocolError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VICI_PROTOCOL', message, options);
  }
}

/** charon refuses longer segments ("currently limited to 512KB"), so a longer one is garbage. */
export const MAX_FRAME = 512 * 1024;
/** Names carry an 8-bit length, values a 16-bit one. */
export const MAX_NAME = 0xff;
export const MAX_VALUE = 0xffff;
/** charon nests about five deep (list-sa > conn > child-sas > child); this bounds the stack. */
export const MAX_DEPTH = 64;
const HEADER = 4;

export const PacketType = {
  CmdRequest: 0,
  CmdResponse: 1,
  CmdUnknown: 2,
  EventRegister: 3,
  EventUnregister: 4,
  EventConfirm: 5,
  EventUnknown: 6,
  Event: 7,
} as const;

const Element = { SectionStart: 1, SectionEnd: 2, KeyValue: 3, ListStart: 4, ListItem: 5, ListEnd: 6 } as const;

/**
 * Values are blobs: text where the bytes are UTF-8, else the bytes (a DER certificate).
 * Sections are plain objects, so key order is insertion order except that JavaScript puts
 * integer-like keys ("0", "17") first. Order matters to charon in a few places (auth rounds,
 * children); never give a connection, child or pool a purely numeric name.
 */
export type ViciValue = string | Buffer;
export interface ViciMessage {
  [key: string]: ViciValue | ViciValue[] | ViciMessage;
}

/** What callers may encode: numbers and booleans become the strings charon parses. */
export type ViciScalar = string | number | bigint | boolean | Buffer;
export interface ViciInput {
  [key: string]: ViciScalar | readonly ViciScalar[] | ViciInput | undefined;
}

export type ViciPacket<M = ViciMessage> =
  | { type: typeof PacketType.CmdRequest | typeof PacketType.Event; name: string; message: M }
  | { type: typeof PacketType.CmdResponse; message: M }
  | { type: typeof PacketType.EventRegister | typeof PacketType.EventUnregister; name: string }
  | { type: typeof PacketType.CmdUnknown | typeof PacketType.EventConfirm | typeof PacketType.EventUnknown };

// fatal: a value that is not UTF-8 must stay bytes; ignoreBOM: a leading U+FEFF is content.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function text(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The bytes of a value, whichever way it was decoded. */
export function viciBytes(value: ViciValue): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---- encoding ----

class Writer {
  private readonly parts: Buffer[] = [];
  size = 0;
  byte(b: number): void {
    this.put(Buffer.of(b));
  }
  put(b: Buffer): void {
    this.size += b.length;
    if (this.size > MAX_FRAME) throw new ViciProtocolError(`message exceeds the ${MAX_FRAME}-byte frame limit`);
    this.parts.push(b);
  }
  name(name: string): void {
    const b = Buffer.from(name, 'utf8');
    if (b.length > MAX_NAME) throw new ViciProtocolError(`name ${JSON.stringify(name.slice(0, 40))}... is ${b.length} bytes, more than ${MAX_NAME}`);
    this.byte(b.length);
    this.put(b);
  }
  value(key: string, v: ViciScalar): void {
    const b = scalarBytes(key, v);
    if (b.length > MAX_VALUE) throw new ViciProtocolError(`value of ${JSON.stringify(key)} is ${b.length} bytes, more than ${MAX_VALUE}`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    this.put(len);
    this.put(b);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

function scalarBytes(key: string, v: unknown): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  // charon's settings parser reads yes/no for booleans and decimal for numbers.
  if (typeof v === 'boolean') return Buffer.from(v ? 'yes' : 'no');
  if (typeof v === 'bigint') return Buffer.from(v.toString());
  if (typeof v === 'number' && Number.isFinite(v)) return Buffer.from(String(v));
  throw new ViciProtocolError(`value of ${JSON.stringify(key)} cannot be encoded: ${typeof v === 'number' ? String(v) : typeof v}`);
}

function writeSection(w: Writer, section: Record<string, unknown>, depth: number): void {
  if (depth > MAX_DEPTH) throw new ViciProtocolError(`sections nest deeper than ${MAX_DEPTH} (a cycle?)`);
  for (const [key, v] of Object.entries(section)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      w.byte(Element.ListStart);
      w.name(key);
      for (const item of v as unknown[]) {
        w.byte(Element.ListItem);
        w.value(key, item as ViciScalar);
      }
      w.byte(Element.ListEnd);
    } else if (isPlainObject(v)) {
      w.byte(Element.SectionStart);
      w.name(key);
      writeSection(w, v, depth + 1);
      w.byte(Element.SectionEnd);
    } else {
      w.byte(Element.KeyValue);
      w.name(key);
      w.value(key, v as ViciScalar);
    }
  }
}

/** A message body; undefined values are left out so optional settings can be written inline. */
export function encodeMessage(message: ViciInput): Buffer {
  const w = new Writer();
  writeSection(w, message, 0);
  return w.bytes();
}

/** A whole frame, length header included, ready for the socket. */
export function encodePacket(packet: ViciPacket<ViciInput>): Buffer {
  const w = new Writer();
  w.put(Buffer.alloc(HEADER));
  w.byte(packet.type);
  if ('name' in packet) w.name(packet.name);
  if ('message' in packet) writeSection(w, packet.message, 0);
  const frame = w.bytes();
  frame.writeUInt32BE(frame.length - HEADER);
  return frame;
}

// ---- decoding ----

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.offset >= this.buf.length;
  }
  byte(what: string): number {
    if (this.offset >= this.buf.length) throw new ViciProtocolError(`truncated: ${what} missing at byte ${this.offset}`);
    return this.buf[this.offset++]!;
  }
  take(n: number, what: string): Buffer {
    if (this.offset + n > this.buf.length) {
      throw new ViciProtocolError(`truncated: ${what} of ${n} bytes at byte ${this.offset}, only ${this.buf.length - this.offset} left`);
    }
    return this.buf.subarray(this.offset, (this.offset += n));
  }
  name(): string {
    const bytes = this.take(this.byte('name length'), 'name');
    const s = text(bytes);
    if (s === undefined) throw new ViciProtocolError(`name at byte ${this.offset - bytes.length} is not UTF-8`);
    return s;
  }
  value(): ViciValue {
    const len = this.take(2, 'value length').readUInt16BE(0);
    const bytes = this.take(len, 'value');
    // A copy, so a decoded message never pins the whole receive buffer.
    return text(bytes) ?? Buffer.from(bytes);
  }
}

// defineProperty, not assignment: a key named "__proto__" must stay data, not a prototype.
function put(target: ViciMessage, key: string, value: ViciMessage[string]): void {
  if (Object.hasOwn(target, key)) throw new ViciProtocolError(`duplicate key ${JSON.stringify(key)} in one section`);
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A message body. Iterative, so nesting costs heap bounded by MAX_DEPTH, not the JS stack. */
export function decodeMessage(buf: Buffer): ViciMessage {
  const r = new Reader(buf);
  const root: ViciMessage = {};
  const sections: ViciMessage[] = [root];
  let list: ViciValue[] | undefined;
  while (!r.done) {
    const at = r.offset;
    const type = r.byte('element type');
    const current = sections[sections.length - 1]!;
    if (list && type !== Element.ListItem && type !== Element.ListEnd) {
      throw new ViciProtocolError(`element type ${type} at byte ${at} inside a list (only items may appear there)`);
    }
    switch (type) {
      case Element.SectionStart: {
        if (sections.length > MAX_DEPTH) throw new ViciProtocolError(`sections nest deeper than ${MAX_DEPTH}`);
        const section: ViciMessage = {};
        put(current, r.name(), section);
        sections.push(section);
        break;
      }
      case Element.SectionEnd:
        if (sections.length === 1) throw new ViciProtocolError(`section end at byte ${at} without a section open`);
        sections.pop();
        break;
      case Element.KeyValue: {
        const key = r.name();
        put(current, key, r.value());
        break;
      }
      case Element.ListStart:
        list = [];
        put(current, r.name(), list);
        break;
      case Element.ListItem:
        if (!list) throw new ViciProtocolError(`list item at byte ${at} outside a list`);
        list.push(r.value());
        break;
      case Element.ListEnd:
        if (!list) throw new ViciProtocolError(`list end at byte ${at} without a list open`);
        list = undefined;
        break;
      default:
        throw new ViciProtocolError(`unknown element type ${type} at byte ${at}`);
    }
  }
  if (list) throw new ViciProtocolError('message ends inside a list');
  if (sections.length > 1) throw new ViciProtocolError(`message ends with ${sections.length - 1} section(s) open`);
  return root;
}

/** One packet: a frame's payload, without the length header. */
export function decodePacket(payload: Buffer): ViciPacket {
  const r = new Reader(payload);
  const type = r.byte('packet type');
  const rest = (): Buffer => payload.subarray(r.offset);
  const nothingMore = (): void => {
    if (!r.done) throw new ViciProtocolError(`packet type ${type} carries ${payload.length - r.offset} unexpected byte(s)`);
  };
  switch (type) {
    case PacketType.CmdRequest:
    case PacketType.Event:
      return { type, name: r.name(), message: decodeMessage(rest()) };
    case PacketType.CmdResponse:
      return { type, message: decodeMessage(rest()) };
    case PacketType.EventRegister:
    case PacketType.EventUnregister: {
      const name = r.name();
      nothingMore();
      return { type, name };
    }
    case PacketType.CmdUnknown:
    case PacketType.EventConfirm:
    case PacketType.EventUnknown:
      nothingMore();
      return { type };
    default:
      throw new ViciProtocolError(`unknown packet type ${type}`);
  }
}

/**
 * Cuts a byte stream into frame payloads, whatever the chunking. Holds at most one
 * frame (MAX_FRAME) plus one chunk; once it has thrown, the stream has lost its framing
 * and every later push throws the same error.
 */
export class ViciFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need: number | undefined;
  private failure: ViciProtocolError | undefined;

  push(chunk: Buffer): Buffer[] {
    if (this.failure) throw this.failure;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const payloads: Buffer[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.buffered < HEADER) break;
        const length = this.take(HEADER).readUInt32BE(0);
        if (length > MAX_FRAME) {
          this.failure = new ViciProtocolError(`frame of ${length} bytes announced, more than ${MAX_FRAME}`);
          this.chunks = [];
          throw this.failure;
        }
        this.need = length;
      }
      if (this.buffered < this.need) break;
      payloads.push(this.take(this.need));
      this.need = undefined;
    }
    return payloads;
  }

  /** True while part of a frame has arrived: a stream that ends now was cut mid-frame. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.need !== undefined;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const used = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, used);
        filled += used;
        if (used === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(used);
      }
    }
    this.buffered -= n;
    return out;
  }
}
