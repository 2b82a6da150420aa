// Runs inside an emulated node (NsWorker, test/helpers/natlab.ts): the agent's probe socket
// through the real Prober, driven by the traversal tests over IPC.
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { stunBinding } from '../../../../node-agent/nat/stun-client.js';
import { formatEndpoint, type Endpoint } from '../../../../node-agent/nat/stun-address.js';
import type { RetransmitPolicy } from '../../../../node-agent/nat/stun-transaction.js';
import { isStun } from '../../../../node-agent/nat/stun.js';
import { udpPort } from '../../../../node-agent/nat/udp.js';
import { Prober, type WgPortMapping } from '../../../../node-agent/traversal/prober.js';

let prober: Prober | undefined;
let received = { all: 0, notStun: 0 };
let loop: { state: { stop: boolean }; done: Promise<StunLoopReport> } | undefined;

export interface StunLoopReport {
  rounds: number;
  /** Every distinct reflexive endpoint seen, formatted. */
  reflexive: string[];
  rttMs: number[];
  transmissions: number;
}

function current(): Prober {
  if (!prober) throw new Error('no probe socket: call open first');
  return prober;
}

/** Binds the probe socket; returns its port. */
export async function open(wgPort: number, probePort: number, retransmit?: Partial<RetransmitPolicy>): Promise<number> {
  prober = await Prober.open({ wgPort, probePort, ...(retransmit ? { stun: { retransmit } } : {}) });
  received = { all: 0, notStun: 0 };
  prober.port.onMessage((data) => {
    received.all++;
    if (!isStun(data)) received.notStun++;
  });
  return prober.probePort;
}

/** Datagrams that reached the probe socket since open (each came through the divert rule), and how many of them were not STUN. */
export function receivedCount(): { all: number; notStun: number } {
  return received;
}

/**
 * STUN round trips to `server`, alternating the probe socket (through the rewrite) and a
 * plain ephemeral socket (no rewrite), so both see the same load.
 */
export async function compareStunRtt(server: Endpoint, rounds: number): Promise<{ rewrite: number[]; plain: number[] }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, () => resolve()));
  try {
    const out = { rewrite: [] as number[], plain: [] as number[] };
    for (let i = 0; i < rounds; i++) {
      out.rewrite.push((await stunBinding(current().port, server)).rttMs);
      out.plain.push((await stunBinding(udpPort(socket), server)).rttMs);
    }
    return out;
  } finally {
    socket.close();
  }
}

export function check(): Promise<void> {
  return current().checkRewrite();
}

/** How long each of `n` rewrite checks took, in ms. */
export async function timeChecks(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await current().checkRewrite();
    out.push(performance.now() - t);
  }
  return out;
}

export function reflexive(servers: Endpoint[]): Promise<WgPortMapping> {
  return current().reflexiveOfWgPort(servers);
}

export function punch(candidate: Endpoint, ttl: number): Promise<void> {
  return current().punch(candidate, ttl);
}

/** Asks `servers` for WGPORT's mapping round after round until stopStunLoop. */
export function startStunLoop(servers: Endpoint[]): void {
  if (loop) throw new Error('a STUN loop is already running');
  const state = { stop: false };
  const done = (async (): Promise<StunLoopReport> => {
    const report: StunLoopReport = { rounds: 0, reflexive: [], rttMs: [], transmissions: 0 };
    const seen = new Set<string>();
    while (!state.stop) {
      const m = await current().reflexiveOfWgPort(servers);
      if (m.failed.length > 0) throw new Error(`round ${report.rounds}: ${m.failed.length} servers did not answer`);
      for (const p of m.probes) {
        seen.add(formatEndpoint(p.mapped));
        report.rttMs.push(p.rttMs);
        report.transmissions += p.transmissions;
      }
      report.rounds++;
    }
    report.reflexive = [...seen];
    return report;
  })();
  // A failing round is reported by stopStunLoop, not as an unhandled rejection meanwhile.
  done.catch(() => undefined);
  loop = { state, done };
}

export async function stopStunLoop(): Promise<StunLoopReport> {
  if (!loop) throw new Error('no STUN loop running');
  const { state, done } = loop;
  loop = undefined;
  state.stop = true;
  return done;
}

export async function close(): Promise<void> {
  await prober?.close();
  prober = undefined;
}
