import fs from 'node:fs';
import path from 'node:path';
import { DEMO, defaultCacheDir } from '../app-paths.ts';
import { cudaProviderInstalled } from '../engine/cuda-provider.ts';
import { Engine } from '../engine/engine.ts';
import { loadTokenizer, type GptjTokenizer } from '../engine/tokenizer.ts';
import { deserializeError, LogitscopeError, serializeError } from '../errors.ts';
import { defaultDbPath } from '../db-paths.ts';
import { ResultStore } from '../store/result-store.ts';
import { resolveProtocol } from '../protocol/presets.ts';
import { LENS_SESSIONS_MODULE } from '../lens/local-sessions.ts';
import type { SweepSpec } from '../protocol/spec.ts';
import type { ApiEvents, Envelope, EventName, Payload, Reply, RequestName, RunStatus } from './contract.ts';
import { doctor } from './doctor-service.ts';
import { gpuInstall, gpuStatus } from './gpu-service.ts';
import { extractOne, saveExtraction, tokenizeOne } from './extract-service.ts';
import { parseRequest } from './schemas.ts';
import { checkLayers, techniqueSpecs } from './technique-choices.ts';
import { sweepOnDevices } from '../scale/devices.ts';
import { readGptjConfig } from '../engine/config.ts';
import { checkResumable, CODE_VERSION, resumeStoredSweep, runStoredSweep } from './sweep-service.ts';
import { datasetPreview, modelView, resolveRunId } from './views.ts';
import { reviewHandlers, type ReviewRequest } from './review-handlers.ts';

export interface LabOptions {
  dbPath?: string;
  cacheRoot?: string;
  /** Open the results database read-only (review commands that change nothing). */
  readonly?: boolean;
}

type Handlers = { [K in RequestName]: (payload: Payload<K>) => Promise<Reply<K>> };

/** The desktop window's main process answers these itself (desktop/shell.ts); they never reach a Lab there. */
const desktopOnly = (name: RequestName) => async (): Promise<never> => {
  throw new LogitscopeError('desktop_only', `${name} is answered by the desktop window (\`logitscope start\`), not in browser mode or the CLI`, 'request');
};

/**
 * The engine side of the app, once for every front (Electron window, browser page, CLI): one
 * loaded model, the results cache, running sweeps, and the handler of every request in
 * contract.ts. `dispatch` validates the payload against its schema and answers with an envelope;
 * it never throws, so no front can crash on a bad request.
 *
 * The engine is never disposed under a call that uses it: every use holds a lease, a model load
 * waits for the leases of short calls (extract) and refuses while a sweep holds one, and calls
 * that arrive during a load wait for the new model.
 */
export class Lab {
  private engine: Engine | undefined;
  private loadSeconds = 0;
  private loading: Promise<unknown> | undefined;
  private leases = 0;
  private readonly leaseReleased = new Set<() => void>();
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** Sweeps started with a request id whose run does not exist yet (reading the slice, fitting a lens). */
  private readonly starting = new Map<string, AbortController>();
  /** Run id -> the request id it was started with, while it runs. */
  private readonly runRequests = new Map<string, string>();
  private readonly listeners = new Set<(name: EventName, payload: unknown) => void>();
  private readonly tokenizers = new Map<string, GptjTokenizer>();

  private readonly handlers: Handlers;

  private constructor(
    private readonly store: ResultStore,
    private readonly cacheRoot: string,
  ) {
    const review = reviewHandlers({ store, cacheRoot, tokenizerFor: (dir) => this.tokenizerFor(dir), changed: () => this.emit('runs.changed', {}) });
    this.handlers = { ...this.ownHandlers, ...review };
  }

  static async open(opts: LabOptions = {}): Promise<Lab> {
    return new Lab(ResultStore.open(opts.dbPath ?? defaultDbPath(), { readonly: opts.readonly }), opts.cacheRoot ?? defaultCacheDir());
  }

  get dbFile(): string {
    return this.store.file;
  }

  async dispatch(name: string, payload: unknown): Promise<Envelope<unknown>> {
    try {
      const parsed = parseRequest(name, payload);
      const handler = this.handlers[name as RequestName] as (p: unknown) => Promise<unknown>;
      return { ok: true, result: await handler(parsed) };
    } catch (e) {
      if (!(e instanceof LogitscopeError)) console.error(`[unexpected] while answering ${name}:`, e);
      return { ok: false, error: serializeError(e) };
    }
  }

  /** Typed form of dispatch for in-process callers (tests, the CLI): throws the error it carries. */
  async call<K extends RequestName>(name: K, payload: Payload<K>): Promise<Reply<K>> {
    const reply = await this.dispatch(name, payload);
    if (!reply.ok) throw deserializeError(reply.error);
    return reply.result as Reply<K>;
  }

  onEvent(listener: (name: EventName, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when the run is no longer computing in this process (at once if it is not). */
  async settled(runId: string): Promise<void> {
    await this.running.get(runId)?.done;
  }

  async close(): Promise<void> {
    for (const c of this.starting.values()) c.abort();
    for (const r of this.running.values()) r.controller.abort();
    // Let cancelled sweeps record their status before the store closes.
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.loading?.catch(() => {});
    await this.engine?.dispose();
    this.engine = undefined;
    this.store.close();
  }

  private emit<E extends EventName>(name: E, payload: ApiEvents[E]): void {
    for (const l of this.listeners) l(name, payload);
  }

  /** Every request but review's (review-handlers.ts), which joins them in the constructor, once the store is set. */
  private readonly ownHandlers: Omit<Handlers, ReviewRequest> = {
    'app.info': async () => ({
      version: CODE_VERSION,
      demo: fs.existsSync(path.join(DEMO.modelDir, 'config.json')) ? { modelDir: DEMO.modelDir, dataFile: DEMO.dataFile, limit: DEMO.limit } : null,
      cuda: { providerInstalled: cudaProviderInstalled() },
      dbPath: this.store.file,
    }),

    'app.doctor': async () => doctor(this.store.file),
    'gpu.status': async () => gpuStatus(),
    'gpu.install': async (p) => gpuInstall(p.flavour),

    'model.load': async (p) => this.load(p),

    'model.current': async () => (this.engine ? modelView(this.engine, this.loadSeconds) : null),

    'dataset.preview': async (p) => datasetPreview(p),

    'sweep.start': async (p) => {
      const tag = p.requestId === undefined ? {} : { requestId: p.requestId };
      if (p.devices) return this.startOnDevices(p, tag);
      const engine = await this.acquire();
      let leased = true;
      try {
        checkLayers(engine, p.layers, p.techniques);
        const spec: SweepSpec = {
          modelDir: engine.info.modelDir,
          device: engine.info.device,
          files: p.files,
          protocol: resolveProtocol(p.preset, p.overrides),
          techniques: techniqueSpecs(p.techniques),
          layers: p.layers,
          k: p.k ?? 10,
          strategy: p.strategy ?? 'fast',
        };
        const controller = new AbortController();
        if (p.requestId !== undefined) this.starting.set(p.requestId, controller);
        return await new Promise<{ runId: string }>((resolve, reject) => {
          const run = this.startedRun(controller, tag, resolve);
          let read = { scanned: 0, passed: 0, filteredOut: 0 };
          const work = (run.work = runStoredSweep(engine, this.store, spec, {
            name: p.name,
            recompute: p.recompute,
            shard: p.shard,
            maxBatchExamples: p.batchSize,
            signal: controller.signal,
            onPreparing: (s) => {
              read = { scanned: s.scanned, passed: s.passed, filteredOut: s.filteredOut };
              if (p.requestId) this.emit('sweep.preparing', { requestId: p.requestId, ...read });
            },
            // A tuned lens's fit comes after the slice is read: its events repeat the slice's last counts.
            onLensProgress: (lens) => p.requestId && this.emit('sweep.preparing', { requestId: p.requestId, ...read, lens }),
            onRunCreated: run.onRunCreated,
            onProgress: run.onProgress,
          }));
          leased = false;
          work
            .then(
              ({ outcome }) => this.finished(run.runId!, outcome.status, tag),
              (e) => (run.runId ? this.finished(run.runId, 'failed', tag, e) : reject(e)),
            )
            .finally(() => {
              if (p.requestId !== undefined && this.starting.get(p.requestId) === controller) this.starting.delete(p.requestId);
              this.release();
            });
        });
      } finally {
        if (leased) this.release();
      }
    },

    'sweep.cancel': async (p) => {
      if (p.requestId !== undefined) {
        const controller = this.starting.get(p.requestId);
        if (controller) {
          controller.abort();
          return { cancelled: true };
        }
        // Its run may exist by now: cancel that one.
        const runId = [...this.runRequests.entries()].find(([, r]) => r === p.requestId)?.[0];
        this.running.get(runId ?? '')?.controller.abort();
        return { cancelled: runId !== undefined && this.running.has(runId) };
      }
      const runId = resolveRunId(this.store, p.runId!);
      const entry = this.running.get(runId);
      entry?.controller.abort();
      return { cancelled: entry !== undefined };
    },

    'sweep.resume': async (p) => {
      const tag = p.requestId === undefined ? {} : { requestId: p.requestId };
      const runId = resolveRunId(this.store, p.runId);
      if (this.running.has(runId)) throw new LogitscopeError('run_busy', `run ${runId} is already running`, 'runId');
      const engine = await this.acquire();
      try {
        // Everything that would make the resume fail is checked before the reply says it started.
        checkResumable(engine, this.store.getRun(runId));
      } catch (e) {
        this.release();
        throw e;
      }
      const controller = new AbortController();
      const work = resumeStoredSweep(engine, this.store, runId, {
        maxBatchExamples: p.batchSize,
        signal: controller.signal,
        onProgress: (progress) => this.emit('sweep.progress', { runId, ...tag, progress }),
      });
      this.track(runId, controller, work.then(() => undefined, () => undefined));
      work
        .then(
          ({ outcome }) => this.finished(runId, outcome.status, tag),
          (e) => this.finished(runId, 'failed', tag, e),
        )
        .finally(() => this.release());
      this.emit('runs.changed', {});
      return { runId };
    },

    extract: async (p) => {
      const engine = await this.acquire();
      try {
        return await extractOne(engine, p);
      } finally {
        this.release();
      }
    },

    'extract.tokenize': async (p) => {
      const engine = await this.acquire();
      try {
        return tokenizeOne(engine, p);
      } finally {
        this.release();
      }
    },

    'extract.save': async (p) => {
      const engine = await this.acquire();
      try {
        const saved = await saveExtraction(engine, this.store, p);
        this.emit('runs.changed', {});
        return saved;
      } finally {
        this.release();
      }
    },

    'runs.delete': async (p) => {
      const runId = resolveRunId(this.store, p.runId);
      // A run still computing here is cancelled first (its finished batches are kept until the
      // delete), so the sweep never writes into rows that are being removed.
      const entry = this.running.get(runId);
      if (entry) {
        entry.controller.abort();
        await entry.done;
      }
      this.store.deleteRun(runId);
      this.emit('runs.changed', {});
      return { deleted: true };
    },

    'desktop.engine': desktopOnly('desktop.engine'),
    'desktop.restartEngine': desktopOnly('desktop.restartEngine'),
    'desktop.pick': desktopOnly('desktop.pick'),
    'desktop.saveExport': desktopOnly('desktop.saveExport'),
    'desktop.saveFile': desktopOnly('desktop.saveFile'),
    'desktop.showInFolder': desktopOnly('desktop.showInFolder'),
  };

  /**
   * sweep.start with devices: the shards run in child processes (scale/devices.ts), each loading
   * the model itself, and are merged into this Lab's database; the run's events are the merged ones.
   */
  private async startOnDevices(p: Payload<'sweep.start'>, tag: { requestId?: string }): Promise<{ runId: string }> {
    const { devices, modelDir: dir, dtype, ...request } = p;
    const modelDir = dir ? path.resolve(dir) : this.engine?.info.modelDir;
    if (!modelDir) throw new LogitscopeError('model_not_loaded', 'load a model first, or give modelDir with devices', 'modelDir');
    const last = readGptjConfig(modelDir).nLayers - 1; // layers are checked here, before any shard starts
    const bad = (p.layers ?? []).filter((l) => l > last);
    if (bad.length > 0) throw new LogitscopeError('layer_out_of_range', `layer${bad.length > 1 ? 's' : ''} ${bad.join(', ')} past the last (${last}) of this model`, 'layers');
    const controller = new AbortController();
    if (p.requestId !== undefined) this.starting.set(p.requestId, controller);
    return new Promise((resolve, reject) => {
      const run = this.startedRun(controller, tag, resolve);
      const work = (run.work = sweepOnDevices({
        store: this.store, devices: devices!, modelDir, dtype, request, cacheRoot: this.cacheRoot, signal: controller.signal,
        onRunCreated: run.onRunCreated,
        onProgress: run.onProgress,
      }));
      work
        .then(
          (r) => this.finished(r.runId, r.status, tag, r.error && deserializeError(r.error)),
          (e) => (run.runId ? this.finished(run.runId, 'failed', tag, e) : reject(e)),
        )
        .finally(() => {
          if (p.requestId !== undefined && this.starting.get(p.requestId) === controller) this.starting.delete(p.requestId);
        });
    });
  }

  /** Loads a model and swaps it in once no call uses the old one. */
  private async load(p: Payload<'model.load'>): Promise<Reply<'model.load'>> {
    if (this.running.size > 0) {
      throw new LogitscopeError('model_busy', `a sweep is running on the loaded model (run ${[...this.running.keys()][0].slice(0, 8)}): cancel it before loading another model`, 'dir');
    }
    while (this.loading) await this.loading.catch(() => {});
    const started = performance.now();
    const dir = path.resolve(p.dir);
    const modelDir = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
    // `loading` settles only once the new engine is swapped in: waiters that looped on a promise
    // that had already settled would spin in microtasks and starve the event loop.
    const loading = (async () => {
      try {
        const engine = await Engine.load({ modelDir, device: p.device ?? 'cpu', dtype: p.dtype, cacheRoot: this.cacheRoot, allowCpuFallback: p.allowCpuFallback ?? false, lensSessions: LENS_SESSIONS_MODULE });
        while (this.leases > 0) await new Promise<void>((resolve) => this.leaseReleased.add(resolve));
        const old = this.engine;
        this.engine = engine;
        this.loadSeconds = (performance.now() - started) / 1000;
        await old?.dispose();
        return engine;
      } finally {
        this.loading = undefined;
      }
    })();
    this.loading = loading;
    const engine = await loading;
    this.emit('model.changed', { dir: engine.info.modelDir });
    return modelView(engine, this.loadSeconds);
  }

  /** The loaded engine, held until `release`; waits for a load in progress. */
  private async acquire(): Promise<Engine> {
    while (this.loading) await this.loading.catch(() => {});
    if (!this.engine) throw new LogitscopeError('model_not_loaded', 'load a model first', 'model');
    this.leases++;
    return this.engine;
  }

  private release(): void {
    this.leases--;
    for (const wake of this.leaseReleased) wake();
    this.leaseReleased.clear();
  }

  /**
   * What every started sweep does once its run exists (the sweep calls onRunCreated after it has
   * begun, so `work` is set by then): track it for cancel and `settled`, announce it, and answer the
   * start request with its id. Progress events carry the caller's request id.
   */
  private startedRun(controller: AbortController, tag: { requestId?: string }, resolve: (r: { runId: string }) => void) {
    const run = {
      runId: undefined as string | undefined,
      work: undefined as Promise<unknown> | undefined,
      onRunCreated: (id: string) => {
        run.runId = id;
        if (tag.requestId !== undefined) {
          this.starting.delete(tag.requestId);
          this.runRequests.set(id, tag.requestId);
        }
        this.track(id, controller, run.work!.then(() => undefined, () => undefined));
        this.emit('runs.changed', {});
        resolve({ runId: id });
      },
      onProgress: (progress: ApiEvents['sweep.progress']['progress']) => this.emit('sweep.progress', { runId: run.runId!, ...tag, progress }),
    };
    return run;
  }

  private track(runId: string, controller: AbortController, done: Promise<void>): void {
    this.running.set(runId, { controller, done });
  }

  private finished(runId: string, status: RunStatus, tag: { requestId?: string }, error?: unknown): void {
    this.running.delete(runId);
    this.runRequests.delete(runId);
    this.emit('sweep.finished', { runId, ...tag, status, ...(error !== undefined && { error: serializeError(error) }) });
    this.emit('runs.changed', {});
  }

  private tokenizerFor(modelDir: string): GptjTokenizer {
    if (this.engine?.info.modelDir === modelDir) return this.engine.tokenizer;
    let t = this.tokenizers.get(modelDir);
    if (!t) this.tokenizers.set(modelDir, (t = loadTokenizer(modelDir)));
    return t;
  }
}
