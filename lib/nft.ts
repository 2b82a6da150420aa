// Executor for nftables: a script applied with `nft -f` is one atomic transaction.
import { CommandError } from './errors.js';
import type { Runner } from './runner.js';

export async function nftApply(runner: Runner, script: string): Promise<void> {
  await runner('nft', ['-f', '-'], { input: script });
}

export async function nftJson(runner: Runner, args: readonly string[]): Promise<unknown> {
  const { stdout } = await runner('nft', ['-j', ...args]);
  return JSON.parse(stdout);
}

/** `nft -j list ...`, or undefined when the object does not exist. */
export async function nftJsonIfExists(runner: Runner, args: readonly string[]): Promise<unknown> {
  const r = await runner('nft', ['-j', ...args], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (/No such file or directory|does not exist/i.test(r.stderr)) return undefined;
    throw new CommandError(`nft -j ${args.join(' ')}`, r.exitCode, r.stderr);
  }
  return JSON.parse(r.stdout);
}
