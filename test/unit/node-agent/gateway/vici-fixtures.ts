// Reads the VICI sessions captured between swanctl and charon 5.9.8 (test/fixtures/vici/).
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { decodePacket, PacketType, ViciFramer, type ViciMessage, type ViciPacket } from '../../../../node-agent/gateway/vici/codec.js';

const FIXTURES = new URL('../../../fixtures/vici/', import.meta.url);
export const FILES = ['version', 'load-conns', 'monitor-sa', 'log', 'initiate', 'list-sas', 'terminate', 'list-conns', 'list-certs',
  'load-conn-invalid-proposal', 'unknown-command-and-event'] as const;
export type Fixture = (typeof FILES)[number];
export type Dir = 'C' | 'S';

export interface Transcript {
  chunks: { dir: Dir; bytes: Buffer }[];
  stream: (dir: Dir) => Buffer;
}

export function transcript(name: Fixture): Transcript {
  const chunks = readFileSync(new URL(`${name}.txt`, FIXTURES), 'utf8').trim().split('\n').map((line) => {
    const [dir, hex] = line.split(' ');
    return { dir: dir as Dir, bytes: Buffer.from(hex!, 'hex') };
  });
  return { chunks, stream: (dir) => Buffer.concat(chunks.filter((c) => c.dir === dir).map((c) => c.bytes)) };
}

/** Frame payloads of one direction, fed to the framer in the chunks they arrived in. */
export function payloads(t: Transcript, dir: Dir): Buffer[] {
  const framer = new ViciFramer();
  const out = t.chunks.filter((c) => c.dir === dir).flatMap((c) => framer.push(c.bytes));
  expect(framer.midFrame).toBe(false);
  return out;
}

export const packets = (name: Fixture, dir: Dir): ViciPacket[] => payloads(transcript(name), dir).map(decodePacket);

/** The events charon sent in a session, as (event name, message). */
export function events(name: Fixture): { event: string; message: ViciMessage }[] {
  return packets(name, 'S').flatMap((p) => (p.type === PacketType.Event ? [{ event: p.name, message: p.message }] : []));
}
