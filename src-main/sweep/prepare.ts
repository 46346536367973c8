import type { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { buildExamples, type ExampleSkips, selectRecords } from '../data/selection.ts';
import type { SweepPlan } from './run-sweep.ts';
import type { SweepSpec } from '../protocol/spec.ts';
import type { SliceProgress, SliceStats } from '../data/slice.ts';
import { resolveTechniques } from '../protocol/techniques.ts';
import { resolveTrackTokens } from './track.ts';
import { attachLenses } from '../lens/resolve.ts';
import type { FitProgress } from '../lens/fit.ts';

export interface PreparedSweep {
  plan: SweepPlan;
  /** How the dataset was read and why records or examples were left out. */
  dataset: { pool: SliceStats; records: number; skipped: ExampleSkips };
}

/** From a spec to runnable examples: select the records, tokenize, draw positions, tokenize target prompts. */
export async function prepareSweep(
  engine: Engine,
  spec: SweepSpec,
  opts: { signal?: AbortSignal; onProgress?: (s: SliceProgress) => void; onLensProgress?: (p: FitProgress) => void } = {},
): Promise<PreparedSweep> {
  const { nLayers, nCtx } = engine.config;
  if (spec.track === 'record' && spec.strategy !== 'fast') {
    throw new LogitscopeError('argument_invalid', 'record tokens are followed by the fast strategy only: use strategy fast', 'track');
  }
  const layers = spec.layers ?? Array.from({ length: nLayers }, (_, l) => l);
  const techniques = resolveTechniques(spec.techniques, engine.promptTokenizer(spec.protocol.bos));
  const selection = await selectRecords(spec.files, spec.protocol, opts);
  const built = buildExamples(selection.records, {
    tokenize: (text) => engine.tokenizer.encode(text),
    bos: engine.bosPlan(spec.protocol.bos),
    nCtx,
    positionSeed: spec.protocol.positionSeed,
  });
  const { skipped } = built;
  const examples = spec.track === 'record'
    ? resolveTrackTokens(built.examples, { encode: (t) => engine.tokenizer.encode(t), decode: (ids) => engine.tokenizer.decode(ids), dVocab: engine.config.dVocab })
    : built.examples;
  if (examples.length === 0) {
    throw new LogitscopeError(
      'slice_empty',
      `none of the ${selection.records.length} selected records can be run (${skipped.empty} tokenize to nothing, ${skipped.tooLong} are longer than ${nCtx} tokens)`,
      'data',
    );
  }
  // A tuned lens is fitted (or found in the cache) on its own train slice, disjoint from these examples' records.
  const withLenses = await attachLenses(engine, techniques, { protocol: spec.protocol, files: spec.files, evalRecords: new Set(selection.records.map((r) => r.index)), signal: opts.signal, onProgress: opts.onLensProgress });
  return {
    plan: { examples, techniques: withLenses, layers, k: spec.k, strategy: spec.strategy },
    dataset: { pool: selection.pool, records: selection.records.length, skipped },
  };
}
