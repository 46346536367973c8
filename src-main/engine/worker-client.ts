import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { deserializeError, LogitscopeError } from '../errors.ts';
import type { Meter, WorkerReplies, WorkerReply, WorkerRequests } from './worker-protocol.ts';

/**
 * The worker's entry is TypeScript, so it is started through tsx's loader, resolved from this
 * package rather than the current directory so that `npx logitscope` works from anywhere.
 */
function workerSource(): string {
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsxApi = pathToFileURL(tsxPackage.replace(/package\.json$/, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
}

/** Calls into the engine worker; every call is a promise, and the main thread never blocks on inference. */
export class WorkerClient {
  private readonly worker = new Worker(workerSource(), { eval: true });
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 0;
  private dead: Error | undefined;
  /** Called with the worker's meter after every reply. */
  onMeter: (m: Meter) => void = () => {};

  constructor() {
    this.worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      this.onMeter(reply.meter);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(deserializeError(reply.error));
    });
    this.worker.on('error', (e) => this.fail(new LogitscopeError('engine_failed', `engine worker crashed: ${e.message}`)));
    this.worker.on('exit', (code) => this.fail(new LogitscopeError('engine_failed', `engine worker exited (code ${code})`)));
  }

  /** `transfer` moves those buffers to the worker (the caller must not use them afterwards). */
  call<K extends keyof WorkerRequests>(op: K, payload: WorkerRequests[K], transfer: ArrayBuffer[] = []): Promise<WorkerReplies[K]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, payload }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.dead ??= new LogitscopeError('engine_failed', 'the engine was disposed');
    await this.worker.terminate();
  }

  private fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}
