// Executor for nftables: a script applied with `nft -f` is one atomic transaction.
import type { Runner } from './runner.js';

export async function nftApply(runner: Runner, script: string): Promise<void> {
  await runner('nft', ['-f', '-'], { input: script });
}

export async function nftJson(runner: Runner, args: readonly string[]): Promise<unknown> {
  const { stdout } = await runner('nft', ['-j', ...args]);
  return JSON.parse(stdout);
}
