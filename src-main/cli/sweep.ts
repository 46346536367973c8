import { DEMO } from '../app-paths.ts';
import type { Lab } from '../api/lab.ts';
import type { ApiEvents, ProtocolOverrides, RunView, SweepRequest, TechniqueChoice } from '../api/contract.ts';
import { checkWritable } from '../api/export-service.ts';
import { parseLayerList, parseTechniqueList } from '../api/parse.ts';
import { deserializeError, LogitscopeError } from '../errors.ts';
import { deviceOption, intOption, parseOptions, requiredOption, withLab } from './options.ts';
import { formatSeconds } from '../api/format.ts';
import { lensProgressPrinter, progressPrinter } from './progress.ts';
import { randomUUID } from 'node:crypto';
import { formatSummaryTable } from './summary-table.ts';
import { formatParity } from './extract-table.ts';
import { parseShard } from '../protocol/shards.ts';

const HELP = `usage: logitscope sweep --model DIR --data FILE... --preset logitscope|patchscopes [--json OUT] [options]
       logitscope sweep --demo [options]      the built-in demo model on its held-out text (${DEMO.limit} examples)
       logitscope sweep --resume RUN [--json OUT] [--db FILE] [--batch-size N] [--allow-cpu-fallback]
       logitscope sweep ... --shard i/N --db SHARD.db     one shard of the sweep into its own database (--db is
                                                   required); merge with \`logitscope runs merge\`
       logitscope sweep ... --devices cuda:0,cuda:1       one shard per device in child processes, merged as they go

Compares next-token extraction techniques at every layer over a dataset slice. Every finished
batch is stored in the results cache (see \`logitscope runs\`); results an earlier run of the same
model computed are reused unless --recompute is given. --json writes the export record (per
example, layer and technique; per-layer means with 95% intervals at the top).
Ctrl-C cancels after storing the finished batches (exit 130); --resume finishes the run later.
Exit status: 0 completed; 2 a coded error (a bad request, before any work, or a stored failure);
1 an unexpected failure; 3 a shard with no examples (i/N with i at or past the slice's size):
nothing computed, its database still records the slice for \`runs merge\`; 130 / 143 cancelled.

  --model DIR          GPT-J checkpoint directory (Hugging Face layout)
  --data FILE          dataset file: .jsonl, .jsonl.gz, .jsonl.zst, .parquet, .txt (repeat for several),
                       or a built-in one: builtin:demo-heldout, builtin:brown, builtin:sotu
  --preset P           logitscope (the seed's protocol) or patchscopes (the paper's)
  --json OUT           also write the export record to OUT (written when cancelled with Ctrl-C too)
  --resume RUN         finish an interrupted or cancelled run (a unique prefix of its id is enough)
  --db FILE            results database (default: $LOGITSCOPE_DB, else the app-data directory)
  --name NAME          a name for the run in the history
  --batch-size N       at most N examples per batch (default: sized from free memory)
  --limit N            at most N examples
  --techniques LIST    comma list of logit_lens,patchscope,logitscope,tuned_lens (default: the first
                       three; tuned_lens fits an affine lens on a train slice first, cached)
  --lens-train A-B     with tuned_lens: train on items A..B (inclusive, at least 2) of the lens's train pool,
                       as \`runs show\` names them ("fitted on items A..B of records ..."); default: the
                       preset's slice (10,000 items disjoint from the evaluation)
  --lens-ridge X       with tuned_lens: the relative ridge, 0 < X < 1 (default 1e-5; λ = X·tr(Σ)/d)
  --lens-seed N        with tuned_lens: seed of the position drawn per train example (default: --seed)
  --prompt TEXT        a custom patchscope target prompt (repeatable)
  --prompt-layer L     target layer for the matching --prompt: "same" (default) or a layer number
  --layers LIST        all (default), or e.g. 0,5,10-27; -1 is the embeddings
  --seed S             seed of the position drawn per example (default 0)
  --top-k K            top-k kept per technique and layer (1..100, default 10)
  --device D           cpu (default), cuda (= cuda:0), cuda:N (GPU N of the machine) or webgpu;
                       --allow-cpu-fallback to run on the CPU if CUDA or WebGPU fails to start
  --dtype T            float32 (default on the CPU) or float16 (default on CUDA); part of the cache key
  --strategy S         fast (default) or naive (one full forward per technique, layer and example)
  --track T            reference (default: its exact probability and rank are every row's surprisal and
                       rank) or record: each example also follows its record's own "track" field (one token,
                       as text with any leading space, or an id) and stores its exact log-probability and
                       rank in every row (jsonl or parquet data; fast strategy only)
  --recompute          compute every row afresh instead of reusing cached rows (verification runs)
  --shard i/N          compute only the examples whose ordinal ≡ i (mod N) of the slice (0 ≤ i < N), into the
                       database --db names (required: a shard never writes into the main database); the run
                       records the whole slice and the shard, and \`runs merge\` makes one run of the N shards
  --devices LIST       run one shard per device (comma-separated, each as --device, all of one kind: e.g.
                       cuda:0,cuda:1) in child processes and merge them into --db as they go; each child
                       loads the model on its device
Protocol overrides (each replaces the preset's value, and the run records what was used):
  --pool-start N --pool-end N --eval-start N --eval-end N --shuffle-seed N|none
  --max-words N --max-chars N --pile-set NAME --bos | --no-bos`;

const OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string', multiple: true },
  preset: { type: 'string' },
  json: { type: 'string' },
  limit: { type: 'string' },
  techniques: { type: 'string' },
  prompt: { type: 'string', multiple: true },
  'prompt-layer': { type: 'string', multiple: true },
  layers: { type: 'string' },
  seed: { type: 'string' },
  'top-k': { type: 'string' },
  device: { type: 'string' },
  dtype: { type: 'string' },
  'allow-cpu-fallback': { type: 'boolean' },
  strategy: { type: 'string' },
  track: { type: 'string' },
  recompute: { type: 'boolean' },
  'pool-start': { type: 'string' },
  'pool-end': { type: 'string' },
  'eval-start': { type: 'string' },
  'eval-end': { type: 'string' },
  'shuffle-seed': { type: 'string' },
  'max-words': { type: 'string' },
  'max-chars': { type: 'string' },
  'pile-set': { type: 'string' },
  bos: { type: 'boolean' },
  'no-bos': { type: 'boolean' },
  resume: { type: 'string' },
  db: { type: 'string' },
  name: { type: 'string' },
  'batch-size': { type: 'string' },
  'lens-train': { type: 'string' },
  'lens-ridge': { type: 'string' },
  'lens-seed': { type: 'string' },
  demo: { type: 'boolean' },
  shard: { type: 'string' },
  devices: { type: 'string' },
} as const;

type Values = NonNullable<ReturnType<typeof parseOptions<typeof OPTIONS>>>;

/** What --resume may be combined with: the run's own settings are recorded and cannot change. */
const RESUME_COMPATIBLE = new Set(['resume', 'json', 'db', 'batch-size', 'allow-cpu-fallback']);

export const sweepCommand = {
  summary: 'run a sweep over a dataset slice and write the export record',
  async run(argv: string[]) {
    const o = parseOptions(argv, OPTIONS, HELP);
    if (!o) return;
    const out = o.json === undefined ? undefined : checkWritable(o.json, '--json');
    const batchSize = intOption(o['batch-size'], 'batch-size');
    if (o.resume !== undefined) {
      const extra = Object.keys(o).filter((k) => !RESUME_COMPATIBLE.has(k));
      if (extra.length > 0) {
        throw new LogitscopeError('argument_invalid', `--resume continues the run with its recorded settings; drop ${extra.map((k) => `--${k}`).join(', ')}`, `--${extra[0]}`);
      }
    }
    if (o.shard !== undefined && o.db === undefined && o.resume === undefined) {
      // Into the main database a shard would be listed as a complete run of the whole slice (its other
      // examples served from the cache), and its rows would mix with everything else there.
      throw new LogitscopeError('argument_invalid', `--shard writes its own results database: add --db FILE (e.g. --db shard-${o.shard.replace('/', '-of-')}.db), then \`logitscope runs merge\` the shards' databases into one`, '--shard');
    }
    // Bad settings are refused before the results database is opened (or created).
    const request = o.resume === undefined ? sweepRequest(o, batchSize) : undefined;
    // Device strings are checked before the results database is opened and before any child process starts.
    const device = o.device === undefined ? undefined : deviceOption(o.device, '--device');
    const devices = o.devices?.split(',').map((d) => deviceOption(d.trim(), '--devices'));
    const clash = o.devices === undefined ? undefined : (['device', 'shard', 'allow-cpu-fallback'] as const).find((k) => o[k] !== undefined);
    if (clash) {
      // The list names each shard's device; one falling back to the CPU would compute under another model key, and could not be merged.
      throw new LogitscopeError('argument_invalid', `--devices chooses each shard's device itself: drop --${clash}`, '--devices');
    }
    const code = await withLab({ db: o.db }, async (lab) => {
      if (o.resume !== undefined) {
        const run = await lab.call('runs.get', { runId: o.resume });
        await loadModel(lab, run.modelPath, run.device, o, run.computeDtype);
        console.error(`resuming run ${run.id}: ${run.examplesDone} of ${run.examplesPlanned ?? '?'} examples already stored`);
        for (const c of run.datasetCheck.filter((d) => !d.matches)) {
          console.error(`warning: ${c.file} no longer matches what run ${run.id.slice(0, 8)} read (${c.detail}); the resume computes the examples stored with the run, not the file's current records`);
        }
        return follow(lab, { out, start: (requestId) => lab.call('sweep.resume', { runId: run.id, batchSize, requestId }) });
      }
      const req = request!; // built above whenever --resume is not given
      if (o.devices !== undefined) {
        // The children load the model; this process only merges, so it never holds the weights.
        const modelDir = requiredOption(o.model ?? (o.demo ? DEMO.modelDir : undefined), 'model');
        return follow(lab, { out, start: (requestId) => lab.call('sweep.start', { ...req, requestId, devices: devices!, modelDir, dtype: o.dtype as SweepRequest['dtype'] }) });
      }
      // Layers past the model's last are refused by sweep.start, before any dataset is read.
      await loadModel(lab, requiredOption(o.model ?? (o.demo ? DEMO.modelDir : undefined), 'model'), device ?? 'cpu', o);
      return follow(lab, { out, start: (requestId) => lab.call('sweep.start', { ...req, requestId }) });
    });
    process.exitCode = code;
  },
};

function sweepRequest(o: Values, batchSize: number | undefined): SweepRequest {
  const files = o.data ?? (o.demo ? [DEMO.dataFile] : []);
  if (files.length === 0) throw new LogitscopeError('argument_invalid', '--data is required (one or more dataset files)', '--data');
  if (o.bos && o['no-bos']) throw new LogitscopeError('argument_invalid', '--bos and --no-bos contradict each other', '--bos');
  const int = (name: keyof Values & string) => intOption(o[name] as string | undefined, name);
  const overrides: ProtocolOverrides = {
    limit: int('limit') ?? (o.demo ? DEMO.limit : undefined),
    positionSeed: int('seed'),
    poolStart: int('pool-start'),
    poolEnd: int('pool-end'),
    evalStart: int('eval-start'),
    evalEnd: int('eval-end'),
    shuffleSeed: o['shuffle-seed'] === 'none' ? null : int('shuffle-seed'),
    pileSetName: o['pile-set'],
    bos: o.bos ? true : o['no-bos'] ? false : undefined,
    filter: o['max-words'] === undefined && o['max-chars'] === undefined ? undefined : { maxWords: int('max-words'), maxChars: int('max-chars') },
  };
  return {
    files,
    preset: requiredOption(o.preset ?? (o.demo ? 'logitscope' : undefined), 'preset') as SweepRequest['preset'],
    overrides: Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
    techniques: withLensOptions(parseTechniqueList(o.techniques, o.prompt ?? [], o['prompt-layer'] ?? []), o),
    layers: parseLayerList(o.layers, { field: '--layers' }),
    k: int('top-k'),
    strategy: o.strategy as SweepRequest['strategy'],
    track: o.track as SweepRequest['track'],
    name: o.name,
    recompute: o.recompute,
    batchSize,
    ...(o.shard !== undefined && { shard: parseShard(o.shard) }),
  };
}

const LENS_OPTIONS = ['lens-train', 'lens-ridge', 'lens-seed'] as const;

/**
 * --lens-train, --lens-ridge and --lens-seed as the tuned_lens technique's settings (the API's
 * `lens`), checked here so a bad value is refused before the model is read or the lens fitted.
 * Refused when tuned_lens is not among the techniques: they would silently do nothing.
 */
function withLensOptions(techniques: TechniqueChoice[], o: Values): TechniqueChoice[] {
  const given = LENS_OPTIONS.filter((k) => o[k] !== undefined);
  if (given.length === 0) return techniques;
  if (!techniques.some((t) => t.id === 'tuned_lens')) {
    throw new LogitscopeError('argument_invalid', `--${given[0]} sets the tuned lens: add tuned_lens to --techniques (e.g. --techniques logit_lens,tuned_lens), or drop ${given.map((k) => `--${k}`).join(', ')}`, `--${given[0]}`);
  }
  const lens: LensChoice = {};
  if (o['lens-train'] !== undefined) {
    const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(o['lens-train']);
    if (!m) throw new LogitscopeError('argument_invalid', `--lens-train must be a range of items such as 0-9999, got "${o['lens-train']}"`, '--lens-train');
    const [from, to] = [Number(m[1]), Number(m[2])];
    if (to - from + 1 < 2) throw new LogitscopeError('argument_invalid', `--lens-train ${from}-${to} must hold at least 2 items (from < to)`, '--lens-train');
    lens.train = { start: from, end: to + 1 };
  }
  if (o['lens-ridge'] !== undefined) {
    const text = o['lens-ridge'];
    const x = Number(text);
    if (text.trim() === '' || !Number.isFinite(x) || !(x > 0 && x < 1)) throw new LogitscopeError('argument_invalid', `--lens-ridge must be a number between 0 and 1 (exclusive), such as 1e-4, got "${text}"`, '--lens-ridge');
    lens.ridge = x;
  }
  lens.positionSeed = intOption(o['lens-seed'], 'lens-seed', { min: 0 });
  if (lens.positionSeed === undefined) delete lens.positionSeed;
  return techniques.map((t) => (t.id === 'tuned_lens' ? { ...t, lens } : t));
}

type LensChoice = NonNullable<Extract<TechniqueChoice, { id: 'tuned_lens' }>['lens']>;

async function loadModel(lab: Lab, dir: string, device: string, o: Values, dtype = o.dtype): Promise<{ nLayers: number }> {
  const model = await lab.call('model.load', { dir, device, dtype: dtype as 'float32' | 'float16' | undefined, allowCpuFallback: o['allow-cpu-fallback'] });
  if (model.fallbackReason) console.error(`warning: running on the CPU: ${model.fallbackReason}`);
  return model.config;
}

/** The exit status of a shard that has no examples of the slice (documented in HELP and the README). */
export const EXIT_EMPTY_SHARD = 3;

/**
 * Starts the sweep and follows it to its end: a progress bar from the Lab's events, Ctrl-C (or
 * SIGTERM) cancels after the finished batches are stored. Resolves to the process's exit code:
 * 0 completed, 3 an empty shard, 130 / 143 cancelled by SIGINT / SIGTERM; a failed run throws its error.
 */
async function follow(lab: Lab, opts: { out?: string; start: (requestId: string) => Promise<{ runId: string }> }): Promise<number> {
  const bar = progressPrinter();
  const lensBar = lensProgressPrinter();
  const started = performance.now();
  // Names the sweep before its run exists, so a signal can cancel a slice read or a lens fit.
  const requestId = randomUUID();
  let runId: string | undefined;
  let signal: NodeJS.Signals | undefined;
  const off = lab.onEvent((name, payload) => {
    if (name === 'sweep.preparing') {
      const p = payload as ApiEvents['sweep.preparing'];
      if (p.requestId === requestId && p.lens && !signal) lensBar.update(p.lens);
      return;
    }
    const p = payload as { runId: string; progress: Parameters<typeof bar.update>[0] };
    if (name === 'sweep.progress' && p.runId === runId) bar.update(p.progress);
  });
  const onSignal = (s: NodeJS.Signals) => {
    if (signal) {
      console.error('still cancelling: the batch in progress ends first');
      return;
    }
    signal = s;
    lensBar.end();
    console.error(runId ? '\ncancelling: every finished batch is already stored; resume with --resume' : '\ncancelling: nothing has been computed yet, so no run will be created');
    void lab.call('sweep.cancel', runId ? { runId } : { requestId }).catch(() => {});
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exitCode = () => (signal === 'SIGTERM' ? 143 : signal ? 130 : 0);
  try {
    try {
      ({ runId } = await opts.start(requestId));
    } catch (e) {
      if (signal && e instanceof LogitscopeError && e.code === 'cancelled') {
        lensBar.end();
        console.error(`cancelled after ${formatSeconds((performance.now() - started) / 1000)}: ${e.message}`);
        return exitCode();
      }
      throw e;
    }
    lensBar.end();
    console.error(describeStart(await lab.call('runs.get', { runId })));
    if (signal) await lab.call('sweep.cancel', { runId });
    await lab.settled(runId);
    bar.end();
    const done = await lab.call('runs.get', { runId });
    const shard = done.dataset.shard as { index: number; count: number } | undefined;
    if (shard && done.status === 'completed' && done.examplesPlanned !== null && shard.index >= done.examplesPlanned) {
      // No table and no parity verdict: there are no rows to judge.
      console.error(
        `shard ${shard.index}/${shard.count} has no examples: the slice has ${done.examplesPlanned}, so only shards 0..${Math.min(shard.count, done.examplesPlanned) - 1} of ${shard.count} compute any; ` +
          `nothing was computed. Run ${runId} in ${lab.dbFile} records the slice, so \`runs merge\` takes this database with the others (exit status ${EXIT_EMPTY_SHARD})`,
      );
      return EXIT_EMPTY_SHARD;
    }
    console.log(formatSummaryTable(done.summary, done.techniques));
    // The run's parity check at the last layer, in the words `runs show` uses.
    console.log(formatParity(done.parity));
    console.error(`${done.status} in ${formatSeconds((performance.now() - started) / 1000)}; run ${runId} is stored in ${lab.dbFile}`);
    if (opts.out && done.examplesDone > 0) {
      await lab.call('runs.export', { runId, format: 'json', out: opts.out }).catch((e) => {
        // The export's `out` is this command's --json.
        throw e instanceof LogitscopeError && e.path === 'out' ? new LogitscopeError(e.code, e.message, '--json') : e;
      });
      console.error(`wrote ${opts.out}`);
    }
    if (done.status === 'failed' && done.error) throw deserializeError(done.error);
    return exitCode();
  } finally {
    off();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const SKIP_WORDS: Record<string, string> = {
  malformedJson: 'malformed JSON',
  missingText: 'no text',
  oversized: 'oversized',
  empty: 'tokenize to nothing',
  tooLong: 'longer than the context',
};

/** The run's size and how its data was read, with every reason a record was left out. */
function describeStart(run: RunView): string {
  const d = run.dataset as { pool?: { scanned: number; filteredOut: number; skipped?: Record<string, number> }; skipped?: Record<string, number> };
  const skips = { ...(d.pool?.skipped ?? {}), ...(d.skipped ?? {}) };
  const left = Object.entries(skips)
    .filter(([, n]) => n > 0)
    .map(([why, n]) => `${n} ${SKIP_WORDS[why] ?? why}`);
  const read = d.pool ? `${d.pool.scanned} records scanned, ${d.pool.filteredOut} filtered out${left.length ? `, skipped: ${left.join(', ')}` : ''}` : 'resumed from the store';
  const shard = run.dataset.shard as { index: number; count: number } | undefined;
  const part = shard ? `; shard ${shard.index}/${shard.count} computes those whose ordinal ≡ ${shard.index} (mod ${shard.count})` : '';
  return `run ${run.id}: ${run.examplesPlanned ?? '?'} examples (${read}${part}), ${run.techniques.length} techniques × ${run.layers.length} layers, ${run.strategy} strategy on ${run.device}`;
}
