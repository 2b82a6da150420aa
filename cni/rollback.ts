// Undo steps for an ADD in progress: each acquired resource pushes its undo, and a
// failure runs them newest first, so a half-made attachment leaves nothing behind.
export type Undo = () => Promise<unknown>;

export class Rollback {
  private readonly steps: { what: string; undo: Undo }[] = [];
  constructor(private readonly onUndoError: (what: string, err: unknown) => void = () => {}) {}

  push(what: string, undo: Undo): void {
    this.steps.push({ what, undo });
  }

  async unwind(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (err) {
        this.onUndoError(step.what, err);
      }
    }
  }
}

/** Settles every step before failing, so no step is still acquiring (or undoing) while the caller goes on; throws the first failure. */
export async function allSettled(steps: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
