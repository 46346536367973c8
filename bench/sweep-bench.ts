/**
 * Fast vs naive sweep on the same GPT-J-shaped model and slice, in one run, plus the "unavoidable
 * work" floor: one batched source pass over every example and one batched unembedding of every
 * (example, technique, layer) row. Prints the ratios.
 *
 * The per-row measures (kl, rank, entropy) are timed by running the fast sweep with and without them.
 *
 *   npx tsx bench/sweep-bench.ts [--layers 28] [--d-model 256] [--heads 4] [--examples 16] [--words 75] [--naive-examples 4] [--dtype float32|float16]
 *                                [--repeats 2] [--measures-only]
 *
 * --repeats: how many times the sweeps without and with the measures alternate (more: less noise on
 * a shared machine). --measures-only: only that comparison, no naive run and no floor.
 *
 * The naive strategy is slow by design, so it runs on the first --naive-examples examples and its
 * time is scaled per example; the fast strategy runs on all of them (it needs a batch to be fast).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../src-main/engine/engine.ts';
import { batchLimits } from '../src-main/sweep/batching.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { BUILT_IN_TECHNIQUES } from '../src-main/protocol/techniques.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import { writeGptjShaped } from './gptj-shaped.ts';
import { benchSpec, planLengths, seconds, timeFast, timeNaive, writeBenchText } from './sweep-timing.ts';

const { values: o } = parseArgs({
  options: {
    layers: { type: 'string', default: '28' },
    'd-model': { type: 'string', default: '256' },
    heads: { type: 'string', default: '4' },
    examples: { type: 'string', default: '16' },
    'naive-examples': { type: 'string', default: '4' },
    words: { type: 'string', default: '150' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'sweep-bench') },
    dtype: { type: 'string', default: 'float32' },
    repeats: { type: 'string', default: '2' },
    'measures-only': { type: 'boolean', default: false },
  },
});
const nLayers = Number(o.layers);
const dModel = Number(o['d-model']);
const nHeads = Number(o.heads);
const count = Number(o.examples);
const naiveCount = Number(o['naive-examples']);

fs.mkdirSync(o.dir, { recursive: true });
const modelDir = path.join(o.dir, `model-L${nLayers}-d${dModel}`);
if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
  writeGptjShaped({ dir: modelDir, nLayers, dModel, nHeads, rotaryDim: Math.max(2, (dModel / nHeads) / 4), dtype: 'F32' });
}
const data = path.join(o.dir, 'data.jsonl');
writeBenchText(data, count, Number(o.words));

const engine = await Engine.load({ modelDir, cacheRoot: path.join(o.dir, 'cache'), dtype: o.dtype as 'float32' | 'float16' });
const { plan } = await prepareSweep(engine, benchSpec(modelDir, data, count, BUILT_IN_TECHNIQUES));
const { full: fullLen, run: meanLen } = planLengths(plan);
console.log(`model: ${nLayers} layers, d_model ${dModel}, ${nHeads} heads, vocab ${engine.config.dVocab}; ${engine.info.computeDtype} on the CPU, ${os.cpus().length} cores`);
console.log(`slice: ${plan.examples.length} examples of ${fullLen.toFixed(0)} tokens (run up to the drawn position: ${meanLen.toFixed(0)} on average), 3 techniques × ${nLayers} layers`);

const { total: fast, perExample: fastPerExample, split } = await timeFast(engine, plan);
// The per-row measures' cost (kl, rank, entropy: an If of the unembedding graph): the same fast
// sweep without them, then with them again, alternating so that drift hits both alike. Timed whole,
// and the unembedding graph alone (engine.timings), where their If runs.
// A sweep that follows a record token per example (track 'record': one more gather and count over each
// row's logits, in the same unembedding run) is timed in the same alternation, with the measures.
const sweeps = { with: [fast], without: [] as number[], tracked: [] as number[] };
const unembedding = { with: [split.unembed], without: [] as number[], tracked: [] as number[] };
const trackedPlan = { ...plan, examples: plan.examples.map((e) => ({ ...e, track: e.tokens[0] })) };
for (let i = 0; i < Number(o.repeats); i++) {
  for (const variant of ['without', 'with', 'tracked'] as const) {
    const before = engine.timings.unembed;
    sweeps[variant].push(await seconds(() => runSweep(engine, variant === 'tracked' ? trackedPlan : plan, { measures: variant !== 'without' })));
    unembedding[variant].push((engine.timings.unembed - before) / 1000);
  }
}
const perExampleMs = (s: number[]) => (Math.min(...s) / plan.examples.length) * 1000;
function printMeasures(): void {
  const [w, wo, uw, uwo] = [sweeps.with, sweeps.without, unembedding.with, unembedding.without].map(perExampleMs);
  console.log(`measures: fast sweep ${w.toFixed(1)} ms/example with kl, rank and entropy, ${wo.toFixed(1)} without (best of ${sweeps.with.length} and ${sweeps.without.length}): ${(w - wo).toFixed(1)} ms/example, ${((w / wo - 1) * 100).toFixed(1)}%`);
  console.log(`          in the unembedding graph alone: ${uw.toFixed(1)} ms/example with, ${uwo.toFixed(1)} without: ${(uw - uwo).toFixed(1)} ms/example`);
  const [t, ut] = [sweeps.tracked, unembedding.tracked].map(perExampleMs);
  console.log(`tracked record tokens: fast sweep ${t.toFixed(1)} ms/example following one per example, ${w.toFixed(1)} without: ${(t - w).toFixed(1)} ms/example, ${((t / w - 1) * 100).toFixed(1)}% (unembedding graph ${ut.toFixed(1)} vs ${uw.toFixed(1)})`);
}
if (o['measures-only']) {
  printMeasures();
  await engine.dispose();
  process.exit(0);
}
const { total: naive, examples: naiveRan, perExample: naivePerExample } = await timeNaive(engine, plan, naiveCount);

// The floor: every source prompt once, and every row through ln_f + lm_head once, in the sweep's own chunk size.
const rows = plan.examples.length * nLayers * plan.techniques.length;
const floor = await seconds(async () => {
  const src = await engine.sourcePass(plan.examples.map((e) => ({ tokens: e.tokens.slice(0, e.position + 1), position: e.position })));
  const resid = new Float32Array(rows * dModel);
  for (let r = 0; r < rows; r++) resid.set(src.resid.subarray((r % (nLayers * src.batch)) * dModel, ((r % (nLayers * src.batch)) + 1) * dModel), r * dModel);
  const chunk = batchLimits(engine.config, { layers: nLayers, longest: Math.max(...plan.examples.map((e) => e.position + 1)) }).unembedRows;
  for (let s = 0; s < rows; s += chunk) {
    const n = Math.min(chunk, rows - s);
    await engine.unembed({ resid: resid.subarray(s * dModel, (s + n) * dModel), referenceIds: new Array(n).fill(0), k: 10 });
  }
});
await engine.dispose();

console.log(`fast:  ${fast.toFixed(2)} s for ${plan.examples.length} examples (${(fastPerExample * 1000).toFixed(0)} ms/example)`);
console.log(`       inside graphs: source passes and prefixes ${split.full.toFixed(2)} s, patched runs ${split.step.toFixed(2)} s, unembedding ${split.unembed.toFixed(2)} s`);
// Everything else of the engine's calls: the worker's JavaScript (index bookkeeping, row copies, one
// logit per row for the paper's surprisal) and the message round trips. No element is converted in JS.
console.log(`       host (worker JS + round trips) ${split.host.toFixed(2)} s; sweep loop outside the engine ${(fast - split.full - split.step - split.unembed - split.host).toFixed(2)} s`);
printMeasures();
console.log(`naive: ${naive.toFixed(2)} s for ${naiveRan} examples (${(naivePerExample * 1000).toFixed(0)} ms/example)`);
console.log(`floor: ${floor.toFixed(2)} s (one batched source pass + unembedding of all ${rows} rows)`);
console.log(`ratio naive/fast per example: ${(naivePerExample / fastPerExample).toFixed(1)}×   (goal ≥ 50×)`);
console.log(`ratio fast/floor:             ${(fast / floor).toFixed(2)}×   (goal ≤ 3×)`);
