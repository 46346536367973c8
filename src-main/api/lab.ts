import fs from 'node:fs';
import path from 'node:path';
import { DEMO, defaultCacheDir } from '../app-paths.ts';
import { previewSlice } from '../data/preview.ts';
import { cudaProviderInstalled } from '../engine/cuda-provider.ts';
import { Engine } from '../engine/engine.ts';
import { loadTokenizer, type GptjTokenizer } from '../engine/tokenizer.ts';
import { LogitscopeError, serializeError } from '../errors.ts';
import { exportCsv, exportJson } from '../store/export.ts';
import { defaultDbPath } from '../store/location.ts';
import { ResultStore, type StoredExample } from '../store/result-store.ts';
import { resolveProtocol } from '../sweep/protocol.ts';
import type { PresetName, ProtocolSettings, SweepSpec } from '../sweep/spec.ts';
import { BUILT_IN_TECHNIQUES, customPatchscope, type TechniqueSpec } from '../sweep/techniques.ts';
import type { ApiEvents, Envelope, EventName, ExampleView, ModelView, Payload, Reply, RequestName, RunView, TechniqueChoice } from './contract.ts';
import { CODE_VERSION, resumeStoredSweep, runStoredSweep } from './sweep-service.ts';
import { boolean, integer, object, oneOf, requiredString, string, stringList, type Fields } from './validate.ts';

export interface LabOptions {
  dbPath?: string;
  cacheRoot?: string;
}

const PRESETS: readonly PresetName[] = ['logitscope', 'patchscopes'];

type Handlers = { [K in RequestName]: (payload: Fields) => Promise<Reply<K>> };

/**
 * The engine side of the app, once for every front: one loaded model, the results cache, running
 * sweeps, and the handlers of every request in contract.ts. `dispatch` validates the payload and
 * answers with an envelope; it never throws, so no front can crash on a bad request.
 */
export class Lab {
  private engine: Engine | undefined;
  private loadSeconds = 0;
  private readonly running = new Map<string, AbortController>();
  private readonly listeners = new Set<(name: EventName, payload: unknown) => void>();
  private readonly tokenizers = new Map<string, GptjTokenizer>();

  private constructor(
    private readonly store: ResultStore,
    private readonly cacheRoot: string,
  ) {}

  static async open(opts: LabOptions = {}): Promise<Lab> {
    return new Lab(ResultStore.open(opts.dbPath ?? defaultDbPath()), opts.cacheRoot ?? defaultCacheDir());
  }

  async dispatch(name: string, payload: unknown): Promise<Envelope<unknown>> {
    try {
      if (!Object.hasOwn(this.handlers, name)) throw new LogitscopeError('argument_invalid', `unknown request "${name}"`, 'name');
      const handler = this.handlers[name as RequestName] as (p: Fields) => Promise<unknown>;
      return { ok: true, result: await handler(object(payload ?? {})) };
    } catch (e) {
      return { ok: false, error: serializeError(e) };
    }
  }

  /** Typed form of dispatch for in-process callers (tests, the CLI): throws the error it carries. */
  async call<K extends RequestName>(name: K, payload: Payload<K>): Promise<Reply<K>> {
    const reply = await this.dispatch(name, payload);
    if (!reply.ok) throw new LogitscopeError(reply.error.code === 'unexpected' ? 'engine_failed' : reply.error.code, reply.error.message, reply.error.path);
    return reply.result as Reply<K>;
  }

  onEvent(listener: (name: EventName, payload: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const c of this.running.values()) c.abort();
    // Let cancelled sweeps record their status before the store closes.
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 20));
    await this.engine?.dispose();
    this.store.close();
  }

  private emit<E extends EventName>(name: E, payload: ApiEvents[E]): void {
    for (const l of this.listeners) l(name, payload);
  }

  private readonly handlers: Handlers = {
    'app.info': async () => ({
      version: CODE_VERSION,
      demo: fs.existsSync(path.join(DEMO.modelDir, 'config.json')) ? { modelDir: DEMO.modelDir, dataFile: DEMO.dataFile } : null,
      cuda: { providerInstalled: cudaProviderInstalled() },
      dbPath: this.store.file,
    }),

    'model.load': async (p) => {
      const dir = requiredString(p, 'dir');
      const device = oneOf(p, 'device', ['cpu', 'cuda'] as const, { optional: true }) ?? 'cpu';
      const allowCpuFallback = boolean(p, 'allowCpuFallback') ?? false;
      if (this.running.size > 0) throw new LogitscopeError('argument_invalid', 'a sweep is running: cancel it before loading another model', 'dir');
      const started = performance.now();
      const engine = await Engine.load({ modelDir: path.resolve(dir), device, cacheRoot: this.cacheRoot, allowCpuFallback });
      await this.engine?.dispose();
      this.engine = engine;
      this.loadSeconds = (performance.now() - started) / 1000;
      this.emit('model.changed', { dir: engine.info.modelDir });
      return this.modelView()!;
    },

    'model.current': async () => this.modelView(),

    'dataset.preview': async (p) => {
      const files = stringList(p, 'files');
      const protocol = this.protocolOf(p);
      const sampleCount = integer(p, 'sampleCount', { optional: true, min: 0 }) ?? 5;
      const preview = await previewSlice(
        { files, start: protocol.poolStart, end: protocol.poolEnd, pileSetName: protocol.pileSetName, filter: protocol.filter },
        { sampleCount },
      );
      return {
        protocol,
        scanned: preview.scanned,
        passed: preview.passed,
        filteredOut: preview.filteredOut,
        capped: preview.capped,
        samples: preview.samples.map((r) => ({ recordIndex: r.index, source: r.source, text: r.text })),
      };
    },

    'sweep.start': async (p) => {
      const engine = this.requireEngine();
      const spec: SweepSpec = {
        modelDir: engine.info.modelDir,
        device: engine.info.device,
        files: stringList(p, 'files'),
        protocol: this.protocolOf(p),
        techniques: techniquesOf(p),
        layers: layersOf(p, engine.config.nLayers),
        k: integer(p, 'k', { optional: true, min: 1, max: 100 }) ?? 10,
        strategy: oneOf(p, 'strategy', ['fast', 'naive'] as const, { optional: true }) ?? 'fast',
      };
      const name = string(p, 'name', { optional: true });
      const controller = new AbortController();
      return new Promise<{ runId: string }>((resolve, reject) => {
        let runId: string | undefined;
        runStoredSweep(engine, this.store, spec, {
          name,
          signal: controller.signal,
          onRunCreated: (id) => {
            runId = id;
            this.running.set(id, controller);
            this.emit('runs.changed', {});
            resolve({ runId: id });
          },
          onProgress: (progress) => this.emit('sweep.progress', { runId: runId!, progress }),
        }).then(
          ({ outcome }) => this.finished(runId!, outcome.status),
          (e) => (runId ? this.finished(runId, 'failed', e) : reject(e)),
        );
      });
    },

    'sweep.cancel': async (p) => {
      const controller = this.running.get(requiredString(p, 'runId'));
      controller?.abort();
      return { cancelled: controller !== undefined };
    },

    'sweep.resume': async (p) => {
      const runId = requiredString(p, 'runId');
      const engine = this.requireEngine();
      if (this.running.has(runId)) throw new LogitscopeError('argument_invalid', `run ${runId} is already running`, 'runId');
      this.store.getRun(runId); // run_not_found before anything starts
      const controller = new AbortController();
      this.running.set(runId, controller);
      resumeStoredSweep(engine, this.store, runId, {
        signal: controller.signal,
        onProgress: (progress) => this.emit('sweep.progress', { runId, progress }),
      }).then(
        ({ outcome }) => this.finished(runId, outcome.status),
        (e) => this.finished(runId, 'failed', e),
      );
      return { runId };
    },

    'runs.list': async (p) =>
      this.store.listRuns({
        status: oneOf(p, 'status', ['running', 'completed', 'cancelled', 'failed'] as const, { optional: true }),
        modelPath: string(p, 'modelPath', { optional: true }),
        dataset: string(p, 'dataset', { optional: true }),
      }),

    'runs.get': async (p) => this.runView(requiredString(p, 'runId')),

    'runs.example': async (p) => this.exampleView(requiredString(p, 'runId'), integer(p, 'ordinal', { min: 0 })!),

    'runs.compare': async (p) => this.store.compare(requiredString(p, 'a'), requiredString(p, 'b')).map(({ technique, layer, a, b }) => ({ technique, layer, a, b })),

    'runs.export': async (p) => {
      const runId = requiredString(p, 'runId');
      const format = oneOf(p, 'format', ['json', 'csv'] as const)!;
      const base = `logitscope-run-${runId.slice(0, 8)}`;
      if (format === 'json') return { fileName: `${base}.json`, mimeType: 'application/json', content: JSON.stringify(exportJson(this.store, runId)) };
      const chunks: string[] = [];
      const { Writable } = await import('node:stream');
      await exportCsv(this.store, runId, new Writable({ write: (chunk, _enc, done) => (chunks.push(String(chunk)), done()) }));
      return { fileName: `${base}.csv`, mimeType: 'text/csv', content: chunks.join('') };
    },

    'runs.delete': async (p) => {
      const runId = requiredString(p, 'runId');
      if (this.running.has(runId)) throw new LogitscopeError('argument_invalid', 'the run is still going: cancel it first', 'runId');
      this.store.deleteRun(runId);
      this.emit('runs.changed', {});
      return { deleted: true };
    },
  };

  private finished(runId: string, status: RunView['status'], error?: unknown): void {
    this.running.delete(runId);
    this.emit('sweep.finished', { runId, status, ...(error !== undefined && { error: serializeError(error) }) });
    this.emit('runs.changed', {});
  }

  private requireEngine(): Engine {
    if (!this.engine) throw new LogitscopeError('argument_invalid', 'load a model first', 'model');
    return this.engine;
  }

  private protocolOf(p: Fields): ProtocolSettings {
    const preset = oneOf(p, 'preset', PRESETS)!;
    return resolveProtocol(preset, p.overrides === undefined ? {} : (object(p.overrides, 'overrides') as Partial<ProtocolSettings>));
  }

  private modelView(): ModelView | null {
    const e = this.engine;
    if (!e) return null;
    const { nLayers, dModel, nHeads, dHead, dMlp, nCtx, rotaryDim, dVocab } = e.config;
    return {
      dir: e.info.modelDir,
      identity: e.info.identity,
      format: e.info.format,
      weightDtype: e.info.weightDtype,
      computeDtype: e.info.computeDtype,
      device: e.info.device,
      ...(e.info.fallbackReason && { fallbackReason: e.info.fallbackReason }),
      config: { nLayers, dModel, nHeads, dHead, dMlp, nCtx, rotaryDim, dVocab },
      loadSeconds: this.loadSeconds,
    };
  }

  private runView(runId: string): RunView {
    const run = this.store.getRun(runId);
    const techniquePrompts = Object.fromEntries(
      run.resolvedTechniques.map((t) => [
        t.id,
        t.kind === 'logit_lens' ? {} : { prompt: t.prompt, promptTokens: t.promptTokens, targetLayer: t.targetLayer.kind === 'same' ? ('same' as const) : t.targetLayer.layer },
      ]),
    );
    const { id, name, status, createdAt, modelPath, files, techniques, layers, examplesPlanned, examplesDone, protocol, strategy, error } = run;
    return { id, name, status, createdAt, modelPath, files, techniques, layers, examplesPlanned, examplesDone, protocol, strategy, techniquePrompts, summary: this.store.summary(runId), error };
  }

  private exampleView(runId: string, ordinal: number): ExampleView {
    const run = this.store.getRun(runId);
    // One page of one example, starting at it: the inspector reads only what it shows.
    const found: StoredExample | void = this.store.iterateResults(runId, { fromOrdinal: ordinal, pageSize: 1 }).next().value;
    if (!found || found.example.ordinal !== ordinal) throw new LogitscopeError('argument_invalid', `run ${runId} has no finished example ${ordinal}`, 'ordinal');
    const tok = this.tokenizerFor(run.modelPath);
    const text = (id: number) => tok.tokenString(id);
    const { example, result } = found;
    return {
      ordinal,
      recordIndex: example.recordIndex,
      source: example.source,
      tokens: example.tokens.map((id) => ({ id, text: text(id) })),
      position: example.position,
      reference: { id: result.reference_top1, text: text(result.reference_top1) },
      cells: result.layers.map((r) => ({
        technique: r.technique,
        layer: r.layer,
        top1: r.top1,
        correct: r.top1 === result.reference_top1,
        surprisal: r.surprisal,
        surprisalPaper: r.surprisal_paper,
        topK: r.top_k.ids.map((id, i) => ({ id, text: text(id), prob: r.top_k.probs[i] })),
      })),
    };
  }

  private tokenizerFor(modelDir: string): GptjTokenizer {
    if (this.engine?.info.modelDir === modelDir) return this.engine.tokenizer;
    let t = this.tokenizers.get(modelDir);
    if (!t) this.tokenizers.set(modelDir, (t = loadTokenizer(modelDir)));
    return t;
  }
}

function techniquesOf(p: Fields): TechniqueSpec[] {
  const list = p.techniques;
  if (!Array.isArray(list) || list.length === 0) throw new LogitscopeError('argument_invalid', 'choose at least one technique', 'techniques');
  let custom = 0;
  return list.map((raw, i) => {
    const c = object(raw, `techniques[${i}]`) as TechniqueChoice & Fields;
    if (c.id === 'custom') {
      const prompt = requiredString(c, 'prompt');
      const rule = object(c.targetLayer ?? { kind: 'same' }, `techniques[${i}].targetLayer`);
      const kind = oneOf(rule, 'kind', ['same', 'fixed'] as const)!;
      return customPatchscope(prompt, custom++, kind === 'same' ? { kind } : { kind, layer: integer(rule, 'layer', { min: -1 })! });
    }
    const builtIn = BUILT_IN_TECHNIQUES.find((t) => t.id === c.id);
    if (!builtIn) throw new LogitscopeError('argument_invalid', `unknown technique ${JSON.stringify(c.id)}`, `techniques[${i}]`);
    return builtIn;
  });
}

function layersOf(p: Fields, nLayers: number): number[] | null {
  if (p.layers === null || p.layers === undefined) return null;
  const layers = p.layers;
  if (!Array.isArray(layers) || layers.length === 0 || layers.some((l) => !Number.isInteger(l) || l < -1 || l >= nLayers)) {
    throw new LogitscopeError('argument_invalid', `layers must be null (all) or a non-empty list of layers from -1 to ${nLayers - 1}`, 'layers');
  }
  return layers as number[];
}

