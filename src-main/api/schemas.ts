/**
 * Every request payload and event payload of the API, declared once as a schema. contract.ts
 * infers the TypeScript types from these; the Lab validates every payload with them before any
 * work, so the Electron window, the browser page and the CLI all get the same checks and the same
 * errors: every problem at once, each with its path, and unknown keys refused (a typo in a
 * setting must not be stored silently in a run's provenance).
 */
import { z } from 'zod';
import { DEVICE_FORMAT, DEVICE_PATTERN } from '../protocol/device.ts';
import { LogitscopeError } from '../errors.ts';

const nonEmpty = (what: string) => z.string().min(1, `${what} cannot be empty`);
const count = z.int().min(0);

/** A run id, or any unique prefix of one (as `runs list` prints them). */
export const runIdSchema = z.string().trim().min(4, 'give at least 4 characters of the run id');

/**
 * Chosen by the caller of sweep.start / sweep.resume and carried by every event of that sweep, so
 * a front can follow its own sweep from the first event, before the reply has told it the run id.
 */
export const requestIdSchema = z.string().min(1).max(100);

export const presetSchema = z.enum(['logitscope', 'patchscopes']);
/** The device a model loads on, as protocol/device.ts parses it: cpu, cuda (= cuda:0), cuda:N or webgpu. */
export const deviceSchema = z.string().regex(DEVICE_PATTERN, `a device is ${DEVICE_FORMAT}`);
export const strategySchema = z.enum(['fast', 'naive']);
/**
 * A device for one shard of a sweep (sweep.start's devices): the engine's one pattern, so a shard
 * device is refused (cuda:01) exactly when `--device` would refuse it, before any child starts.
 */
export const shardDeviceSchema = deviceSchema;
export const runStatusSchema = z.enum(['running', 'completed', 'cancelled', 'failed', 'interrupted']);

/** A source layer: -1 is the embeddings (hook_embed), 0..nLayers-1 the output of each block. */
export const layerSchema = z.int().min(-1, 'layers start at -1 (the embeddings)');
/** null = every layer 0..nLayers-1. Checked against the loaded model's depth by the Lab. */
export const layerListSchema = z.array(layerSchema).min(1, 'choose at least one layer').max(4096).nullable();

export const targetLayerRuleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('same') }),
  z.strictObject({ kind: z.literal('fixed'), layer: layerSchema }),
]);

export const techniqueChoiceSchema = z.discriminatedUnion('id', [
  z.strictObject({ id: z.enum(['logit_lens', 'patchscope', 'logitscope']) }),
  z.strictObject({
    id: z.literal('custom'),
    prompt: nonEmpty('a custom patchscope prompt').max(4000),
    targetLayer: targetLayerRuleSchema.optional(),
  }),
  /**
   * The affine tuned lens (src-main/lens/): fitted per model on a train slice disjoint from the
   * evaluation records; each setting replaces the preset's default and is recorded with the run.
   */
  z.strictObject({
    id: z.literal('tuned_lens'),
    lens: z
      .strictObject({
        train: z
          .strictObject({ poolStart: count.optional(), poolEnd: z.int().min(1).optional(), shuffleSeed: count.nullable().optional(), start: count.optional(), end: z.int().min(2).optional() })
          .optional(),
        ridge: z.number().gt(0).lt(1).optional(),
        positionSeed: count.optional(),
      })
      .optional(),
  }),
]);
export const techniqueListSchema = z.array(techniqueChoiceSchema).min(1, 'choose at least one technique').max(64);

/** Each replaces the preset's value; the run records what was used (PROTOCOL.md's table). */
export const protocolOverridesSchema = z.strictObject({
  poolStart: count.optional(),
  poolEnd: z.int().min(1).optional(),
  pileSetName: nonEmpty('pileSetName').optional(),
  filter: z.strictObject({ maxWords: z.int().min(1).optional(), maxChars: z.int().min(1).optional() }).optional(),
  shuffleSeed: count.nullable().optional(),
  evalStart: count.optional(),
  evalEnd: z.int().min(1).nullable().optional(),
  limit: z.int().min(1).optional(),
  bos: z.boolean().optional(),
  positionSeed: count.optional(),
});

const filesSchema = z.array(nonEmpty('a dataset file name')).min(1, 'choose at least one dataset file').max(10_000);
/**
 * Top-k kept per technique and layer when a request gives none: one value for sweeps and
 * extractions, from every front (the CLI, the app, the HTTP API), since the schema fills it in.
 */
export const DEFAULT_K = 10;
const topKSchema = z.int().min(1).max(100).default(DEFAULT_K);
const empty = z.strictObject({});

/** One prompt and position to extract from; shared by `extract` and `extract.save`. */
const extractFields = {
  text: nonEmpty('the prompt'),
  /** Default: the last token. Counts BOS when `bos` is on. */
  position: count.optional(),
  /**
   * Instead of one position: every position ('all') or an inclusive range, each read as its own
   * example (the logit-lens picture). Not together with `position`.
   */
  positions: z.union([z.literal('all'), z.strictObject({ from: count, to: count })]).optional(),
  bos: z.boolean().default(false),
  k: topKSchema,
  /** Default: the three built-in techniques. */
  techniques: techniqueListSchema.optional(),
  layers: layerListSchema.optional(),
};

export const requestSchemas = {
  'app.info': empty,
  /** Which execution providers start here, the GPU, and where data is kept. */
  'app.doctor': z.strictObject({ modelDir: nonEmpty('the model folder').optional() }),
  /** Which CUDA provider is beside onnxruntime-node's library. */
  'gpu.status': empty,
  /** Fetch and install onnxruntime's CUDA provider of one CUDA version (the CLI's `gpu install`). */
  'gpu.install': z.strictObject({ flavour: z.enum(['cuda12', 'cuda13'], { error: 'choose cuda12 or cuda13' }) }),
  'model.load': z.strictObject({
    dir: nonEmpty('the model directory'),
    device: deviceSchema.default('cpu'),
    /** Compute dtype; default float32 on the CPU, float16 on CUDA. It is part of every result's cache key. */
    dtype: z.enum(['float32', 'float16']).optional(),
    allowCpuFallback: z.boolean().default(false),
  }),
  'model.current': empty,
  'dataset.preview': z.strictObject({
    files: filesSchema,
    preset: presetSchema,
    overrides: protocolOverridesSchema.optional(),
    sampleCount: z.int().min(0).max(50).default(5),
  }),
  'sweep.start': z.strictObject({
    files: filesSchema,
    preset: presetSchema,
    overrides: protocolOverridesSchema.optional(),
    techniques: techniqueListSchema,
    layers: layerListSchema,
    k: topKSchema,
    strategy: strategySchema.default('fast'),
    /** 'record': every example also follows its record's own `track` token (sweep/track.ts); default 'reference'. */
    track: z.enum(['reference', 'record'], { error: "track is 'reference' or 'record'" }).optional(),
    name: z.string().max(200).optional(),
    /** Compute every row afresh instead of reading earlier runs' rows (verification runs). */
    recompute: z.boolean().optional(),
    /** At most this many examples per batch (default: sized from free memory). */
    batchSize: z.int().min(1).max(1_000_000).optional(),
    requestId: requestIdSchema.optional(),
    /** Compute only the examples whose ordinal ≡ index (mod count) of the slice (scale/shard.ts). */
    shard: z.strictObject({ index: count, count: z.int().min(1).max(4096) }).refine((s) => s.index < s.count, 'shard index must be below the shard count').optional(),
    /** One shard per device, each in its own process, merged into one run as they go (scale/devices.ts). */
    devices: z.array(shardDeviceSchema).min(1).max(64).optional(),
    /** With devices: the model each shard loads (default: the loaded model's) and its compute dtype (default: the device's). */
    modelDir: nonEmpty('the model directory').optional(),
    dtype: z.enum(['float32', 'float16']).optional(),
  }).superRefine((p, ctx) => {
    if (p.track === 'record' && p.strategy === 'naive') ctx.addIssue({ code: 'custom', path: ['track'], message: "record tokens are followed by the fast strategy only: use strategy fast" });
    if (p.devices && p.shard) ctx.addIssue({ code: 'custom', path: ['shard'], message: 'devices splits the sweep into shards itself: give shard or devices, not both' });
    if (!p.devices && (p.modelDir !== undefined || p.dtype !== undefined)) ctx.addIssue({ code: 'custom', path: [p.modelDir !== undefined ? 'modelDir' : 'dtype'], message: 'modelDir and dtype go with devices; otherwise the loaded model is used' });
    if (p.devices && new Set(p.devices.map((d) => d.split(':')[0])).size > 1) ctx.addIssue({ code: 'custom', path: ['devices'], message: 'all devices must be of one kind (cpu, cuda or webgpu): results are keyed by device, so a mix cannot merge into one run' });
  }),
  /**
   * By run id, or by the request id of a sweep.start whose run does not exist yet (the slice is being
   * read or its tuned lens fitted): that sweep stops between batches and creates no run.
   */
  'sweep.cancel': z
    .strictObject({ runId: runIdSchema.optional(), requestId: requestIdSchema.optional() })
    .refine((p) => (p.runId === undefined) !== (p.requestId === undefined), { message: 'give runId or requestId (one of them)', path: ['runId'] }),
  'sweep.resume': z.strictObject({ runId: runIdSchema, batchSize: z.int().min(1).max(1_000_000).optional(), requestId: requestIdSchema.optional() }),
  extract: z.strictObject({
    ...extractFields,
    /** A token id to follow: each cell also says its exact probability and rank there (the engine's, over the whole vocabulary). */
    follow: count.optional(),
  }),
  /** The prompt as the model reads it, before any compute: the Extract view shows it to pick a position. */
  'extract.tokenize': z.strictObject({ text: nonEmpty('the prompt'), bos: z.boolean().default(false) }),
  /** Computes the extraction again and stores it as a one-example run (history, exports). */
  'extract.save': z.strictObject({ ...extractFields, name: z.string().trim().max(200).optional() }),
  'runs.list': z.strictObject({ status: runStatusSchema.optional(), modelPath: z.string().optional(), dataset: z.string().optional() }),
  'runs.get': z.strictObject({ runId: runIdSchema }),
  'runs.example': z.strictObject({ runId: runIdSchema, ordinal: count }),
  /** A stored example computed again on the loaded model (the run's own), following one token id in every cell. */
  'runs.follow': z.strictObject({ runId: runIdSchema, ordinal: count, token: count }),
  /** One technique's per-layer curves split by the examples' data source (meta.pile_set_name); `metric` is echoed for the front's chart. */
  'runs.bySource': z.strictObject({ runId: runIdSchema, technique: nonEmpty('technique') }),
  /**
   * A page of the run's examples filtered and sorted by one technique × layer cell (the filter's,
   * else the sort's, else the run's first technique at its last layer): "logit lens wrong at layer 3".
   */
  'runs.examples': z.strictObject({
    runId: runIdSchema,
    filter: z
      .strictObject({
        technique: nonEmpty('technique').optional(),
        layer: layerSchema.optional(),
        correct: z.boolean().optional(),
        referenceToken: count.optional(),
        /** The reference token as text (" sea"), for a front that has no ids; it must be one token. */
        referenceText: z.string().min(1).optional(),
        source: z.string().optional(),
        minSurprisal: z.number().optional(),
        /** The technique commits at this layer or later (examples that never commit are left out). */
        minCommitment: layerSchema.optional(),
      })
      .optional(),
    sort: z
      .strictObject({ by: z.enum(['surprisal', 'surprisalPaper', 'ordinal']), technique: nonEmpty('technique'), layer: layerSchema, descending: z.boolean().optional() })
      .optional(),
    offset: count,
    limit: z.int().min(1).max(500),
  }),
  'runs.compare': z.strictObject({ a: runIdSchema, b: runIdSchema }),
  'runs.export': z.strictObject({
    runId: runIdSchema,
    format: z.enum(['json', 'csv', 'parquet']),
    /** Write to this file (streamed) instead of returning the content; for the CLI and save dialogs. */
    out: nonEmpty('the output file').optional(),
  }),
  'runs.delete': z.strictObject({ runId: runIdSchema }),
  /** Shard runs (sweep.start with shard), each from its own database, merged into one run of this database (scale/merge.ts). */
  'runs.merge': z.strictObject({
    files: z.array(nonEmpty('a shard database')).min(1, 'give at least one shard database').max(4096),
    /** Write the run even where the shards do not cover the slice; it is marked failed with the missing ordinals. */
    allowPartial: z.boolean().optional(),
  }),
  /**
   * Run b minus run a per technique and layer: paired over the examples both computed, or, when
   * they share none, unpaired (independent samples). The reply says which test and why.
   */
  'runs.diff': z.strictObject({ a: runIdSchema, b: runIdSchema }),
  /** Within one run, technique b minus technique a per layer, paired per example. */
  'runs.diffTechniques': z.strictObject({ runId: runIdSchema, a: nonEmpty('technique a'), b: nonEmpty('technique b') }),
  /** Per technique, where the run's examples' predictions commit: a histogram and the median with its interval. */
  'runs.commitment': z.strictObject({ runId: runIdSchema }),
  'references.list': empty,
  'references.get': z.strictObject({ name: nonEmpty('the reference name').max(200) }),
  /** A reference table the user picked: its text and file name (.json or .csv), checked and returned as rows. */
  'references.parse': z.strictObject({ name: nonEmpty('the file name').max(255), text: z.string().max(16 * 1024 * 1024) }),
  /** Rename a run, or set its notes and tags; a field left out stays as it is, null clears it. */
  'runs.update': z.strictObject({
    runId: runIdSchema,
    name: z.string().trim().max(200).nullable().optional(),
    notes: z.string().max(20_000).nullable().optional(),
    tags: z.array(z.string().trim().min(1, 'a tag cannot be empty').max(40)).max(32).optional(),
  }),
  /*
   * Answered by the desktop window's main process, not the Lab (desktop/shell.ts): the engine
   * process's state, native dialogs, and files the user chose. Browser mode refuses them.
   */
  'desktop.engine': empty,
  'desktop.restartEngine': empty,
  /** A native Open dialog: a checkpoint directory, or dataset files. Nothing is read until the user picks. */
  'desktop.pick': z.strictObject({ kind: z.enum(['modelDir', 'datasetFiles']) }),
  /** A native Save dialog, then the run's export written by the engine to the chosen file. */
  'desktop.saveExport': z.strictObject({ runId: runIdSchema, format: z.enum(['json', 'csv', 'parquet']) }),
  /** A native Save dialog for what the page made (a figure, a CSV); `content` is text or a base64 data URL. */
  'desktop.saveFile': z.strictObject({
    fileName: z.string().trim().min(1).max(255),
    mimeType: z.string().min(1).max(100),
    content: z.string().max(256 * 1024 * 1024),
  }),
  /** Shows a file in the system's file manager: only one chosen or saved through this window, or the engine's log. */
  'desktop.showInFolder': z.strictObject({ path: nonEmpty('the file') }),
} as const;

export type RequestSchemas = typeof requestSchemas;

/** Bounds are null where an interval has no width to give (n = 1): JSON-safe, the same on every front. */
const bound = z.number().nullable();
const intervalSchema = z.object({ mean: z.number(), low: bound, high: bound });
export const layerSummarySchema = z.object({
  technique: z.string(),
  layer: z.int(),
  n: z.int(),
  precision: intervalSchema,
  surprisal: intervalSchema,
  surprisalPaper: intervalSchema,
  measures: z.object({ n: z.int(), kl: intervalSchema, rank: intervalSchema, entropy: intervalSchema }).nullable(),
  tracked: z.object({ n: z.int(), surprisal: intervalSchema, rank: intervalSchema }).nullable(),
});
const serializedErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  path: z.string().optional(),
  issues: z.array(z.object({ path: z.string(), message: z.string(), code: z.string().optional() })).optional(),
  name: z.string().optional(),
});

/** The desktop's engine process as its main process supervises it (desktop/engine-supervisor.ts). */
export const engineStateSchema = z.object({
  state: z.enum(['starting', 'ready', 'stopped']),
  pid: z.int().nullable(),
  /** From spawn to the Lab answering, for the last start. */
  startSeconds: z.number().nullable(),
  restarts: z.int(),
  /** It died and is being restarted by itself (once; after that only on request). */
  restarting: z.boolean(),
  /** Where its output is appended. */
  logFile: z.string(),
  /** The last time it died unasked: how, and its last log lines. Kept across the restart that followed. */
  crash: z
    .object({ code: z.int().nullable(), signal: z.string().nullable(), error: serializedErrorSchema.optional(), logTail: z.array(z.string()), at: z.string() })
    .nullable(),
});

/** Events say "this changed" and carry ids and progress, never tensors. */
export const eventSchemas = {
  'sweep.progress': z.object({
    runId: z.string(),
    requestId: z.string().optional(),
    progress: z.object({
      examplesDone: z.int(),
      examplesTotal: z.int(),
      examplesFromCache: z.int(),
      throughput: z.number().nullable(),
      etaSeconds: z.number().nullable(),
      summary: z.array(layerSummarySchema),
    }),
  }),
  /** While a started sweep reads its dataset slice, before its run exists. */
  'sweep.preparing': z.object({
    requestId: z.string(),
    scanned: z.int(),
    passed: z.int(),
    filteredOut: z.int(),
    /** While a tuned lens is fitted: its phase, and records read (selecting), train examples collected, maps solved or held-out examples checked, of the total. */
    lens: z
      .object({
        phase: z.enum(['selecting', 'collecting', 'solving', 'checking']),
        done: z.int(),
        total: z.int(),
        /** A cached lens was damaged: the refusal, in the error's words; the lens is being fitted again. */
        refused: z.string().optional(),
      })
      .optional(),
  }),
  'sweep.finished': z.object({ runId: z.string(), requestId: z.string().optional(), status: runStatusSchema, error: serializedErrorSchema.optional() }),
  'model.changed': z.object({ dir: z.string() }),
  'runs.changed': empty,
  /** Desktop only: the engine process started, is ready, or stopped (and why). */
  'engine.state': engineStateSchema,
} as const;

export type EventSchemas = typeof eventSchemas;

/** Turns zod's issues into the API's: a dotted path ("techniques.1.prompt") and a sentence. */
export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown ${i.keys.length === 1 ? 'key' : 'keys'} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message,
  }));
}

/**
 * A request's payload checked against its schema, with the defaults filled in; every problem at
 * once otherwise (argument_invalid, each with its path). Used by every receiver of requests: the
 * Lab, and the desktop main process for the requests it answers itself.
 */
export function parseRequest(name: string, payload: unknown): unknown {
  if (!Object.hasOwn(requestSchemas, name)) throw new LogitscopeError('argument_invalid', `unknown request "${name}"`, 'request');
  const parsed = requestSchemas[name as keyof RequestSchemas].safeParse(payload ?? {});
  if (parsed.success) return parsed.data;
  const issues = issuesOf(parsed.error);
  const summary = issues.length === 1 ? issues[0].message : `${issues.length} problems with the ${name} request`;
  throw new LogitscopeError('argument_invalid', summary, issues.length === 1 ? issues[0].path : undefined, issues);
}
