// Follows the CNI plugin's log file like `tail -F -n 0`: what was in it when the agent
// started is not counted again (a restarted agent's counters start at zero, and Prometheus
// reads a reset as such), everything written after is, across the file not existing yet,
// being truncated (copytruncate) or replaced (rotation by rename: the old file is read to
// its end before the new one is opened, from its start). Polled: a stat a second is
// cheaper than inotify's edge cases, and the plugin writes a few lines per pod.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { errorMessage } from '../../lib/errors.js';
import { LineSplitter, parseCniLogLine, type CniCall } from './cni-log.js';

const POLL_MS = 1000;
/** Read at most this much at once; a file that grew more is read in several reads. */
const CHUNK_BYTES = 1 << 20;

export interface CniLogFollowerOptions {
  path: string;
  onCall: (call: CniCall) => void;
  /** Anything but "no such file" (which only means no pod was set up yet), once per distinct message. */
  onError?: (err: unknown) => void;
}

export class CniLogFollower {
  private readonly splitter = new LineSplitter();
  private readonly buf = Buffer.alloc(CHUNK_BYTES);
  private file: FileHandle | undefined;
  private ino = 0;
  private offset = 0;
  private first = true;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private lastError: string | undefined;

  constructor(private readonly o: CniLogFollowerOptions) {}

  start(): void {
    void this.poll();
    this.timer ??= setInterval(() => void this.poll(), POLL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.file?.close();
    this.file = undefined;
  }

  /** One look at the file; one at a time. */
  poll(): Promise<void> {
    this.polling ??= this.look()
      .then(() => (this.lastError = undefined), (err: unknown) => {
        if (errorMessage(err) !== this.lastError) this.o.onError?.(err);
        this.lastError = errorMessage(err);
      })
      .finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async look(): Promise<void> {
    const st = await stat(this.o.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (this.file) {
      await this.drain();
      if (!st || st.ino !== this.ino) {
        // Renamed away or removed: read to its end (above), then on to the new one.
        await this.file.close();
        this.file = undefined;
      }
    }
    if (!this.file && st) {
      this.file = await open(this.o.path, 'r');
      const opened = await this.file.stat();
      this.ino = opened.ino;
      this.offset = this.first ? opened.size : 0;
      this.splitter.reset();
      await this.drain();
    }
    this.first = false;
  }

  private async drain(): Promise<void> {
    const file = this.file!;
    const { size } = await file.stat();
    if (size < this.offset) {
      // Truncated in place: what is there now is new.
      this.offset = 0;
      this.splitter.reset();
    }
    while (this.offset < size) {
      const { bytesRead } = await file.read(this.buf, 0, Math.min(size - this.offset, CHUNK_BYTES), this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      for (const line of this.splitter.push(this.buf.subarray(0, bytesRead))) {
        const call = parseCniLogLine(line);
        if (call) this.o.onCall(call);
      }
    }
  }
}
