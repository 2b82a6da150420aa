// stdout and stderr that survive their reader going away. `warren-configgen --help |
// head -1` closes the pipe after one line; Node reports the next write's EPIPE as an
// 'error' event on the stream which, unhandled, kills the process with a stack trace.
// A closed pipe means nobody reads any more: the rest of the output is dropped and the
// command ends with its own exit status (an allocation, if any, has happened). Any other
// write error is reported through `onFailure`.
export interface OutputStream {
  write(text: string): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** Whether a write error means the reader has gone (the pipe is closed). */
export function readerGone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

export function guardedWriter(stream: OutputStream, onFailure: (err: Error) => void): (text: string) => void {
  let closed = false;
  stream.on('error', (err) => {
    closed = true;
    if (!readerGone(err)) onFailure(err);
  });
  return (text) => {
    if (!closed) stream.write(text);
  };
}
