// The node-wide steps of ADD (the bridge's gateway addresses, the masquerade chain) that the
// resident server has found in place a moment ago, so that its next ADDs need not check
// them again: each check is a process (`ip`, `nft`), and on a busy node processes are what
// an ADD costs. The standalone path, a process per call, checks every time.
//
// A step is trusted for STEP_FRESH_MS after it was last found right, for the same desired
// state only (the key holds it). Something that undoes it behind Warren's back (a flushed
// nft table) is repaired by the first ADD after that, as on the standalone path, at most
// this much later.
export const STEP_FRESH_MS = 10_000;

export class RecentSteps {
  private readonly at = new Map<string, number>();
  constructor(private readonly now: () => number = () => performance.now(), private readonly freshMs = STEP_FRESH_MS) {}

  fresh(key: string): boolean {
    const t = this.at.get(key);
    return t !== undefined && this.now() - t < this.freshMs;
  }

  /** The step was just found, or made, as `key` says it should be. */
  done(key: string): void {
    // Keys differ only when the config does: a handful per node, but bounded all the same.
    if (this.at.size > 64) this.at.clear();
    this.at.set(key, this.now());
  }
}
