import fs from 'node:fs';
import { DEMO } from '../app-paths.ts';
import { Engine } from '../engine/engine.ts';
import type { Device } from '../engine/ort-session.ts';
import { LogitscopeError } from '../errors.ts';
import { resumeStoredSweep, runStoredSweep } from '../api/sweep-service.ts';
import { exportJson } from '../store/export.ts';
import { defaultDbPath } from '../store/location.ts';
import { ResultStore } from '../store/result-store.ts';
import { resolveProtocol } from '../sweep/protocol.ts';
import type { SweepOutcome, SweepProgress } from '../sweep/run-sweep.ts';
import type { PresetName, Strategy, SweepSpec } from '../sweep/spec.ts';
import { intOption, parseOptions, requiredOption } from './options.ts';
import { formatSeconds, progressPrinter } from './progress.ts';
import { parseLayers, parseTechniques } from './sweep-options.ts';
import { formatSummaryTable } from './summary-table.ts';

const HELP = `usage: logitscope sweep --model DIR --data FILE... --preset logitscope|patchscopes [--json OUT] [options]
       logitscope sweep --demo [options]      the built-in demo model on its held-out text (${DEMO.limit} examples)
       logitscope sweep --resume RUN [--json OUT]

Compares next-token extraction techniques at every layer over a dataset slice. Every finished
batch is stored in the results cache (see \`logitscope runs\`); results an earlier run of the same
model computed are reused. --json writes the export record (per example, layer and technique;
per-layer means with 95% CIs at the top).

  --model DIR          GPT-J checkpoint directory (Hugging Face layout)
  --data FILE          dataset file: .jsonl, .jsonl.gz, .jsonl.zst, .parquet, .txt (repeat for several),
                       or a built-in one: builtin:demo-heldout, builtin:brown, builtin:sotu
  --preset P           logitscope (the seed's protocol) or patchscopes (the paper's)
  --json OUT           also write the export record to OUT (written when cancelled with Ctrl-C too)
  --resume RUN         finish an interrupted or cancelled run
  --db FILE            results database (default: $LOGITSCOPE_DB, else the app-data directory)
  --name NAME          a name for the run in the history
  --batch-size N       at most N examples per batch (default: sized from free memory)
  --limit N            at most N examples
  --techniques LIST    comma list of logit_lens,patchscope,logitscope (default: all three)
  --prompt TEXT        a custom patchscope target prompt (repeatable)
  --prompt-layer L     target layer for the matching --prompt: "same" (default) or a layer number
  --layers LIST        all (default), or e.g. 0,5,10-27; -1 is the embeddings
  --seed S             seed of the position drawn per example (default 0)
  --top-k K            top-k kept per technique and layer (default 10)
  --device D           cpu (default) or cuda;  --allow-cpu-fallback to run on the CPU if CUDA fails
  --strategy S         fast (default) or naive (one full forward per technique, layer and example)
Protocol overrides (each replaces the preset's value, and the run records what was used):
  --pool-start N --pool-end N --eval-start N --eval-end N --shuffle-seed N|none
  --max-words N --max-chars N --pile-set NAME --bos | --no-bos`;

export const sweepCommand = {
  summary: 'run a sweep over a dataset slice and write the export record',
  async run(argv: string[]) {
    const o = parseOptions(argv, {
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
      device: { type: 'string', default: 'cpu' },
      'allow-cpu-fallback': { type: 'boolean', default: false },
      strategy: { type: 'string', default: 'fast' },
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
      demo: { type: 'boolean', default: false },
    }, HELP);
    if (!o) return;
    if (o.demo) {
      // The built-in demo: its model, the held-out corpus part, the seed's protocol, a laptop-sized slice.
      o.model ??= DEMO.modelDir;
      o.data ??= [DEMO.dataFile];
      o.preset ??= 'logitscope';
      o.limit ??= String(DEMO.limit);
    }
    const batch = intOption(o['batch-size'], 'batch-size', { min: 1 });
    if (o.resume) {
      await runSweepCommand({ resume: o.resume, out: o.json, db: o.db, allowCpuFallback: o['allow-cpu-fallback']!, batch });
      return;
    }
    const files = o.data ?? [];
    if (files.length === 0) throw new LogitscopeError('argument_invalid', '--data is required (one or more dataset files)', '--data');
    const preset = requiredOption(o.preset, 'preset') as PresetName;
    if (o.device !== 'cpu' && o.device !== 'cuda') throw new LogitscopeError('argument_invalid', `--device must be cpu or cuda, got "${o.device}"`, '--device');
    if (o.strategy !== 'fast' && o.strategy !== 'naive') throw new LogitscopeError('argument_invalid', `--strategy must be fast or naive, got "${o.strategy}"`, '--strategy');
    if (o.bos && o['no-bos']) throw new LogitscopeError('argument_invalid', '--bos and --no-bos contradict each other', '--bos');
    const shuffle = o['shuffle-seed'] === 'none' ? null : intOption(o['shuffle-seed'], 'shuffle-seed', { min: 0 });
    const protocol = resolveProtocol(preset, {
      limit: intOption(o.limit, 'limit', { min: 1 }),
      positionSeed: intOption(o.seed, 'seed', { min: 0 }),
      poolStart: intOption(o['pool-start'], 'pool-start', { min: 0 }),
      poolEnd: intOption(o['pool-end'], 'pool-end', { min: 1 }),
      evalStart: intOption(o['eval-start'], 'eval-start', { min: 0 }),
      evalEnd: intOption(o['eval-end'], 'eval-end', { min: 1 }),
      shuffleSeed: shuffle,
      pileSetName: o['pile-set'],
      bos: o.bos ? true : o['no-bos'] ? false : undefined,
      filter: { ...maybe('maxWords', intOption(o['max-words'], 'max-words', { min: 1 })), ...maybe('maxChars', intOption(o['max-chars'], 'max-chars', { min: 1 })) },
    });
    const spec: SweepSpec = {
      modelDir: requiredOption(o.model, 'model'),
      device: o.device as Device,
      files,
      protocol,
      techniques: parseTechniques(o.techniques, o.prompt ?? [], o['prompt-layer'] ?? []),
      layers: parseLayers(o.layers),
      k: intOption(o['top-k'], 'top-k', { min: 1, fallback: 10 })!,
      strategy: o.strategy as Strategy,
    };
    await runSweepCommand({ spec, out: o.json, db: o.db, name: o.name, allowCpuFallback: o['allow-cpu-fallback']!, batch });
  },
};

function maybe<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

async function runSweepCommand(opts: { spec?: SweepSpec; resume?: string; out?: string; db?: string; name?: string; allowCpuFallback: boolean; batch?: number }): Promise<void> {
  const store = ResultStore.open(opts.db ?? defaultDbPath());
  const controller = new AbortController();
  const onSigint = () => {
    console.error('\ncancelling: every finished batch is already stored; resume with --resume');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  let engine: Engine | undefined;
  try {
    const resumed = opts.resume ? store.getRun(opts.resume) : undefined;
    const modelDir = resumed ? resumed.modelPath : opts.spec!.modelDir;
    const device = resumed ? ((resumed.model.device as Device | undefined) ?? 'cpu') : opts.spec!.device;
    engine = await Engine.load({ modelDir, device, allowCpuFallback: opts.allowCpuFallback });
    if (engine.info.fallbackReason) console.error(`warning: running on the CPU: ${engine.info.fallbackReason}`);
    const bar = progressPrinter();
    const hooks = { signal: controller.signal, onProgress: (p: SweepProgress) => bar.update(p), maxBatchExamples: opts.batch };
    const started = performance.now();
    let runId: string;
    let outcome: SweepOutcome;
    let techniques: string[];
    if (resumed) {
      runId = resumed.id;
      console.error(`resuming run ${runId}: ${resumed.examplesDone} of ${resumed.examplesPlanned ?? '?'} examples already stored`);
      ({ outcome } = await resumeStoredSweep(engine, store, runId, hooks));
      techniques = resumed.techniques;
    } else {
      const result = await runStoredSweep(engine, store, opts.spec!, {
        ...hooks,
        name: opts.name,
        onRunCreated: (id, { plan, dataset }) =>
          console.error(
            `run ${id}: ${plan.examples.length} examples (${dataset.pool.scanned} records scanned, ${dataset.pool.filteredOut} filtered out), ` +
              `${plan.techniques.length} techniques × ${plan.layers.length} layers, ${plan.strategy} strategy on ${engine!.info.device}`,
          ),
      });
      ({ runId, outcome } = result);
      techniques = result.prepared.plan.techniques.map((t) => t.id);
    }
    bar.end();
    console.log(formatSummaryTable(outcome.summary, techniques));
    const seconds = (performance.now() - started) / 1000;
    console.error(`${outcome.status} in ${formatSeconds(seconds)}; run ${runId} is stored in ${store.file}`);
    if (opts.out) {
      fs.writeFileSync(opts.out, JSON.stringify(exportJson(store, runId)));
      console.error(`wrote ${opts.out}`);
    }
  } finally {
    process.off('SIGINT', onSigint);
    await engine?.dispose();
    store.close();
  }
}
