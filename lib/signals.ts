// A process's stop signals. The first SIGTERM or SIGINT asks for a stop; for a daemon,
// whose graceful stop can hang, a second one forces the exit at once (128 + the signal's
// number, as a shell reports it).
//
// The listeners stay installed for the process's life. execa's signal-exit, registered
// while a child runs, re-raises a signal when it finds itself the only listener: with a
// `once` listener, a SIGTERM that arrived while `wg` ran killed the process (status 143)
// instead of stopping it.
export type StopSignal = 'SIGTERM' | 'SIGINT';

const EXIT_STATUS: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/** How a shell reports a process ended by `signal`: 128 + its number. */
export function signalExitStatus(signal: StopSignal): number {
  return EXIT_STATUS[signal];
}

export interface SignalSource {
  on(signal: StopSignal, listener: () => void): unknown;
}

export interface StopSignalOptions {
  /** Ends the process; process.exit in a daemon. */
  exit: (status: number) => void;
  /** Told before a forced exit, to say so in the log. */
  onForce?: (signal: StopSignal, status: number) => void;
}

/**
 * Resolves with the first stop signal. With `force`, every later one forces the exit;
 * without, later ones are ignored: for a caller that exits on the first, and never sees one.
 */
export function stopSignals(source: SignalSource, force?: StopSignalOptions): Promise<StopSignal> {
  let first: StopSignal | undefined;
  return new Promise((resolve) => {
    for (const signal of Object.keys(EXIT_STATUS) as StopSignal[]) {
      source.on(signal, () => {
        if (first === undefined) {
          first = signal;
          resolve(signal);
          return;
        }
        if (!force) return;
        force.onForce?.(signal, EXIT_STATUS[signal]);
        force.exit(EXIT_STATUS[signal]);
      });
    }
  });
}
