/**
 * The sweeps a Lab is computing: by run id once the run exists, by the caller's request id before
 * (while the slice is read or a tuned lens fitted), so either can be cancelled; and the events that
 * tell every front a sweep started, moved on or finished.
 */
import { serializeError } from '../errors.ts';
import type { ApiEvents, EventName, RunStatus } from './contract.ts';

export type Emit = <E extends EventName>(name: E, payload: ApiEvents[E]) => void;

/** The caller's request id, carried by every event of its sweep. */
export type RequestTag = { requestId?: string };

type Progress = ApiEvents['sweep.progress']['progress'];

export class RunRegistry {
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** Sweeps started with a request id whose run does not exist yet. */
  private readonly starting = new Map<string, AbortController>();
  /** Run id -> the request id it was started with, while it runs. */
  private readonly runRequests = new Map<string, string>();

  constructor(private readonly emit: Emit) {}

  /** A run computing here, if any: a model load refuses while one does. */
  get anyRunning(): string | undefined {
    return this.running.keys().next().value;
  }

  has(runId: string): boolean {
    return this.running.has(runId);
  }

  /** Resolves when the run is no longer computing in this process (at once if it is not). */
  async settled(runId: string): Promise<void> {
    await this.running.get(runId)?.done;
  }

  /** A sweep is starting under the caller's request id: it can be cancelled by that id until its run exists. */
  begin(tag: RequestTag): AbortController {
    const controller = new AbortController();
    if (tag.requestId !== undefined) this.starting.set(tag.requestId, controller);
    return controller;
  }

  /** The start is over (its run exists, or it failed before one did). */
  end(tag: RequestTag, controller: AbortController): void {
    if (tag.requestId !== undefined && this.starting.get(tag.requestId) === controller) this.starting.delete(tag.requestId);
  }

  /**
   * What every started sweep does once its run exists (the sweep calls onRunCreated after it has
   * begun, so `work` is set by then): track it for cancel and `settled`, announce it, and answer the
   * start request with its id. Progress events carry the caller's request id.
   */
  started(controller: AbortController, tag: RequestTag, resolve: (r: { runId: string }) => void) {
    const run = {
      runId: undefined as string | undefined,
      work: undefined as Promise<unknown> | undefined,
      onRunCreated: (id: string) => {
        run.runId = id;
        if (tag.requestId !== undefined) {
          this.starting.delete(tag.requestId);
          this.runRequests.set(id, tag.requestId);
        }
        this.track(id, controller, run.work!);
        this.emit('runs.changed', {});
        resolve({ runId: id });
      },
      onProgress: (progress: Progress) => this.emit('sweep.progress', { runId: run.runId!, ...tag, progress }),
    };
    return run;
  }

  /** A run computing here until `work` settles (however it ends). */
  track(runId: string, controller: AbortController, work: Promise<unknown>): void {
    this.running.set(runId, { controller, done: work.then(() => undefined, () => undefined) });
  }

  progress(runId: string, tag: RequestTag): (progress: Progress) => void {
    return (progress) => this.emit('sweep.progress', { runId, ...tag, progress });
  }

  finished(runId: string, status: RunStatus, tag: RequestTag, error?: unknown): void {
    this.running.delete(runId);
    this.runRequests.delete(runId);
    this.emit('sweep.finished', { runId, ...tag, status, ...(error !== undefined && { error: serializeError(error) }) });
    this.emit('runs.changed', {});
  }

  /** Cancels the sweep started under this request id, whether its run exists yet or not. */
  cancelRequest(requestId: string): boolean {
    const controller = this.starting.get(requestId);
    if (controller) {
      controller.abort();
      return true;
    }
    // Its run may exist by now: cancel that one.
    const runId = [...this.runRequests.entries()].find(([, r]) => r === requestId)?.[0];
    return runId !== undefined && this.cancel(runId);
  }

  /** Asks the run to stop between batches; false when it is not computing here. */
  cancel(runId: string): boolean {
    const entry = this.running.get(runId);
    entry?.controller.abort();
    return entry !== undefined;
  }

  /** Cancels the run and waits until its finished batches are recorded. */
  async stop(runId: string): Promise<void> {
    if (this.cancel(runId)) await this.settled(runId);
  }

  /** Cancels everything, and lets cancelled sweeps record their status (before the store closes). */
  async close(): Promise<void> {
    for (const c of this.starting.values()) c.abort();
    for (const r of this.running.values()) r.controller.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }
}
