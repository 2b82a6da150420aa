// A continuous ping between two lab nodes, for the longest gap in traffic across an event.
import { spawn } from 'node:child_process';
import type { AgentNode } from './agent-lab.js';

/**
 * A continuous ping every `intervalMs` (iputils, in the node's namespace): the longest gap
 * is the longest run of unanswered sequence numbers times the interval, which a loop of
 * single pings with a 1 s timeout cannot resolve below a second.
 */
export function seqPing(from: AgentNode, to: string, intervalMs = 20): { answering: Promise<void>; stop: () => Promise<{ sent: number; answered: number; longestGapMs: number; gapAfterMs?: number }> } {
  const child = spawn('ip', ['netns', 'exec', from.site.host.name, 'ping', '-n', '-i', String(intervalMs / 1000), to], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  let answered!: () => void;
  const answering = new Promise<void>((r) => (answered = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('icmp_seq=')) answered();
  });
  // 'close', not 'exit': the summary line may still be in the pipe when the process has exited.
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  return {
    answering,
    stop: async () => {
      child.kill('SIGINT');
      await exited;
      const seqs = [...out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
      const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? NaN);
      // Unanswered runs count at the end too (seq numbers start at 1).
      const bounds = [...seqs, sent + 1];
      let worst = 0;
      let gapAt: number | undefined;
      for (let i = 1; i < bounds.length; i++) {
        const gap = bounds[i]! - bounds[i - 1]! - 1;
        if (gap > worst) [worst, gapAt] = [gap, bounds[i - 1]!];
      }
      if (!Number.isFinite(sent)) throw new Error(`ping from ${from.name} to ${to} printed no summary:\n${out.slice(-500)}`);
      return { sent, answered: seqs.length, longestGapMs: worst * intervalMs, ...(gapAt === undefined ? {} : { gapAfterMs: gapAt * intervalMs }) };
    },
  };
}

