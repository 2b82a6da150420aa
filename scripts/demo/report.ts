// What the demo prints: numbered steps, indented command output, and checks that stop the
// demo (and make it exit non-zero) when they fail.
import { interrupted } from './teardown.js';

let stepNo = 0;
export function step(title: string): void {
  if (interrupted) throw new Error(`interrupted (${interrupted})`);
  console.log(`\n[${++stepNo}] ${title}`);
}

export const show = (text: string): void => console.log(text.trimEnd().split('\n').map((l) => (l.trim() ? `      ${l}` : '')).join('\n'));

export function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`    ✔ ${what}`);
}

/** `$ program --flag value ...`, wrapped before `width` columns at flag boundaries. */
export function showCommand(program: string, args: readonly string[], width = 110): void {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) words.push(args[i]!.startsWith('--') && args[i + 1] && !args[i + 1]!.startsWith('--') ? `${args[i]} ${args[++i]}` : args[i]!);
  const lines = [`$ ${program}`];
  for (const w of words) {
    if (lines.at(-1)!.length + w.length + 3 > width) lines.push(`     ${w}`);
    else lines[lines.length - 1] += ` ${w}`;
  }
  console.log(lines.map((l) => `    ${l}`).join(' \\\n'));
}
