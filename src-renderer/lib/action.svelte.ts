/**
 * What a button starts: busy while it runs, and the error it ended with, for the ErrorNote beside
 * the button. One per group of buttons that share a note.
 */
export class Action {
  busy = $state(false);
  error = $state<unknown>(null);

  /** Runs `fn`; resolves to false when it failed (its error is kept), never rejects. */
  async run(fn: () => Promise<unknown>): Promise<boolean> {
    this.error = null;
    this.busy = true;
    try {
      await fn();
      return true;
    } catch (e) {
      this.error = e;
      return false;
    } finally {
      this.busy = false;
    }
  }
}
