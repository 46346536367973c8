import fs from 'node:fs';
import { Engine } from '../engine/engine.ts';
import type { Device } from '../engine/ort-session.ts';
import { LogitscopeError } from '../errors.ts';
import { sweepExportRecord } from '../sweep/export-record.ts';
import { prepareSweep } from '../sweep/prepare.ts';
import { resolveProtocol } from '../sweep/protocol.ts';
import { runSweep } from '../sweep/run-sweep.ts';
import type { PresetName, Strategy, SweepSpec } from '../sweep/spec.ts';
import { intOption, parseOptions, requiredOption } from './options.ts';
import { formatSeconds, progressPrinter } from './progress.ts';
import { parseLayers, parseTechniques } from './sweep-options.ts';

const HELP = `usage: logitscope sweep --model DIR --data FILE... --preset logitscope|patchscopes --json OUT [options]

Compares next-token extraction techniques at every layer over a dataset slice and writes the
export record (per example, layer and technique; per-layer means with 95% CIs at the top).

  --model DIR          GPT-J checkpoint directory (Hugging Face layout)
  --data FILE          dataset file: .jsonl, .jsonl.gz, .jsonl.zst, .parquet, .txt (repeat for several)
  --preset P           logitscope (the seed's protocol) or patchscopes (the paper's)
  --json OUT           where to write the export record (also written when cancelled with Ctrl-C)
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
    }, HELP);
    if (!o) return;
    const out = requiredOption(o.json, 'json');
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
    await runSweepCommand(spec, out, o['allow-cpu-fallback']!);
  },
};

function maybe<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

async function runSweepCommand(spec: SweepSpec, out: string, allowCpuFallback: boolean): Promise<void> {
  const engine = await Engine.load({ modelDir: spec.modelDir, device: spec.device, allowCpuFallback });
  const controller = new AbortController();
  const onSigint = () => {
    console.error('\ncancelling: finishing nothing new, writing what is done…');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    if (engine.info.fallbackReason) console.error(`warning: running on the CPU: ${engine.info.fallbackReason}`);
    const prepared = await prepareSweep(engine, spec, { signal: controller.signal });
    const { plan, dataset } = prepared;
    console.error(
      `${plan.examples.length} examples (${dataset.pool.scanned} records scanned, ${dataset.pool.filteredOut} filtered out), ` +
        `${plan.techniques.length} techniques × ${plan.layers.length} layers, ${spec.strategy} strategy on ${engine.info.device}`,
    );
    const bar = progressPrinter();
    const started = performance.now();
    const outcome = await runSweep(engine, plan, { signal: controller.signal, onProgress: (p) => bar.update(p) });
    bar.end();
    const seconds = (performance.now() - started) / 1000;
    const record = sweepExportRecord({
      info: engine.info,
      techniques: plan.techniques,
      protocol: spec.protocol,
      examples: plan.examples,
      outcome,
      extra: { strategy: spec.strategy, dataset: { files: spec.files, ...dataset }, timings: { seconds, ...outcome.timings } },
    });
    fs.writeFileSync(out, JSON.stringify(record));
    console.error(`${outcome.status} in ${formatSeconds(seconds)}; wrote ${out}`);
  } finally {
    process.off('SIGINT', onSigint);
    await engine.dispose();
  }
}
