import { defaultCacheDir } from '../app-paths.ts';
import { deserializeError, LogitscopeError, serializeError } from '../errors.ts';
import { defaultDbPath } from '../db-paths.ts';
import { ResultStore } from '../store/result-store.ts';
import { appHandlers } from './app-handlers.ts';
import type { Envelope, EventName, Payload, Reply, RequestName } from './contract.ts';
import { datasetHandlers } from './dataset-handlers.ts';
import { EngineHost } from './engine-host.ts';
import { extractHandlers } from './extract-handlers.ts';
import { gpuHandlers } from './gpu-handlers.ts';
import type { Handlers, LabContext } from './handlers.ts';
import { modelHandlers } from './model-handlers.ts';
import { RunRegistry } from './run-registry.ts';
import { runHandlers } from './run-handlers.ts';
import { parseRequest } from './schemas.ts';
import { sweepHandlers } from './sweep-handlers.ts';
import { TokenizerCache } from './tokenizer-cache.ts';

export interface LabOptions {
  dbPath?: string;
  cacheRoot?: string;
  /** Open the results database read-only (review commands that change nothing). */
  readonly?: boolean;
}

/**
 * The engine side of the app, once for every front (Electron window, browser page, CLI): one
 * loaded model lent out by lease (engine-host.ts), the results cache, the sweeps running here
 * (run-registry.ts), and a handler for every request in contract.ts, one map per domain.
 * `dispatch` validates the payload against its schema and answers with an envelope; it never
 * throws, so no front can crash on a bad request.
 */
export class Lab {
  private readonly listeners = new Set<(name: EventName, payload: unknown) => void>();
  private readonly context: LabContext;
  private readonly handlers: Handlers<RequestName>;

  private constructor(store: ResultStore, cacheRoot: string) {
    const emit: LabContext['emit'] = (name, payload) => {
      for (const l of this.listeners) l(name, payload);
    };
    const engine = new EngineHost(cacheRoot);
    const context: LabContext = { store, cacheRoot, engine, runs: new RunRegistry(emit), tokenizers: new TokenizerCache(() => engine.current), emit };
    this.context = context;
    this.handlers = {
      ...appHandlers(context),
      ...modelHandlers(context),
      ...datasetHandlers(),
      ...sweepHandlers(context),
      ...extractHandlers(context),
      ...gpuHandlers(),
      ...runHandlers(context),
    };
  }

  static async open(opts: LabOptions = {}): Promise<Lab> {
    return new Lab(ResultStore.open(opts.dbPath ?? defaultDbPath(), { readonly: opts.readonly }), opts.cacheRoot ?? defaultCacheDir());
  }

  get dbFile(): string {
    return this.context.store.file;
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
    await this.context.runs.settled(runId);
  }

  async close(): Promise<void> {
    // Cancelled sweeps record their status and return their leases before the store closes.
    await this.context.runs.close();
    await this.context.engine.dispose();
    this.context.store.close();
  }
}
