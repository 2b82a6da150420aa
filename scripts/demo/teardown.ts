// Everything the demo creates registers its undo before going on; teardown() undoes it all
// in reverse order, whatever happened (a failed check, an exception, Ctrl-C). What must be
// gone afterwards is registered too, and leftovers() looks for it: the path itself, and
// any process whose command line names it (etcd, coturn, the agents, wireguard-go, the OVS
// daemons, conmon, a server).
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** The signal that interrupted the demo, if any: the current step finishes, then teardown runs. */
export let interrupted: string | undefined;
/** From now on Ctrl-C lets the current step finish and teardown run (the demo; a benchmark keeps Node's default). */
export function catchSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (!interrupted) console.error(`\n${sig}: stopping after the current command, then cleaning up...`);
      interrupted ??= sig;
    });
  }
}

const undo: { what: string; fn: () => Promise<void> | void }[] = [];
export const onTeardown = (what: string, fn: () => Promise<void> | void): void => void undo.push({ what, fn });

/** Undoes everything registered; false when some undo failed (each failure is printed). */
export async function teardown(): Promise<boolean> {
  let clean = true;
  for (let u = undo.pop(); u; u = undo.pop()) {
    await Promise.resolve().then(u.fn).catch((err: Error) => { clean = false; console.error(`    ✘ teardown: ${u!.what}: ${err.message}`); });
  }
  return clean;
}

const marks: { what: string; path: string | undefined; mark: string | undefined }[] = [];
/** `path` must not exist after teardown, nor any process naming `mark` (default: the path). */
export const mustVanish = (what: string, path: string | undefined, mark = path): void => void marks.push({ what, path, mark });

export function leftovers(): string[] {
  const processes: [string, string][] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      processes.push([pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()]);
    } catch {
      // exited meanwhile
    }
  }
  return marks.flatMap(({ what, path, mark }) => [
    ...(path && existsSync(path) ? [`${what}: ${path}`] : []),
    ...processes.filter(([, cmd]) => mark && cmd.includes(mark)).map(([pid, cmd]) => `${what}: process ${pid}: ${cmd.slice(0, 100)}`),
  ]);
}
