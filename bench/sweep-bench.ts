/**
 * Fast vs naive sweep on the same GPT-J-shaped model and slice, in one run, plus the "unavoidable
 * work" floor: one batched source pass over every example and one batched unembedding of every
 * (example, technique, layer) row. Prints the ratios.
 *
 * The per-row measures (kl, rank, entropy) are timed by running the fast sweep with and without them.
 *
 *   npx tsx bench/sweep-bench.ts [--layers 28] [--d-model 256] [--heads 4] [--examples 16] [--words 75] [--naive-examples 4] [--dtype float32|float16]
 *
 * The naive strategy is slow by design, so it runs on the first --naive-examples examples and its
 * time is scaled per example; the fast strategy runs on all of them (it needs a batch to be fast).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { batchLimits } from '../src-main/sweep/batching.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import { BUILT_IN_TECHNIQUES } from '../src-main/protocol/techniques.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

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
  },
});
const nLayers = Number(o.layers);
const dModel = Number(o['d-model']);
const nHeads = Number(o.heads);
const count = Number(o.examples);
const naiveCount = Number(o['naive-examples']);

const WORDS = (
  'time year people way day man thing woman life child world school state family student group country problem hand part place case week ' +
  'company system program question work government number night point home water room mother area money story fact month lot right study ' +
  'book eye job word business issue side kind head house service friend father power hour game line end member law car city community name'
).split(' ');

fs.mkdirSync(o.dir, { recursive: true });
const modelDir = path.join(o.dir, `model-L${nLayers}-d${dModel}`);
if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
  writeGptjShaped({ dir: modelDir, nLayers, dModel, nHeads, rotaryDim: Math.max(2, (dModel / nHeads) / 4), dtype: 'F32' });
}
const data = path.join(o.dir, 'data.jsonl');
const rand = mulberry32(7);
const lines = Array.from({ length: count }, () => JSON.stringify({ text: Array.from({ length: Number(o.words) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') }));
fs.writeFileSync(data, lines.join('\n'));

const engine = await Engine.load({ modelDir, cacheRoot: path.join(o.dir, 'cache'), dtype: o.dtype as 'float32' | 'float16' });
const spec = {
  modelDir,
  device: 'cpu' as const,
  files: [data],
  protocol: resolveProtocol('logitscope', { limit: count, filter: { maxWords: 100_000, maxChars: 1_000_000 } }),
  techniques: [...BUILT_IN_TECHNIQUES],
  layers: null,
  k: 10,
  strategy: 'fast' as const,
};
const { plan } = await prepareSweep(engine, spec);
const meanLen = plan.examples.reduce((s, e) => s + e.position + 1, 0) / plan.examples.length;
const fullLen = plan.examples.reduce((s, e) => s + e.tokens.length, 0) / plan.examples.length;
console.log(`model: ${nLayers} layers, d_model ${dModel}, ${nHeads} heads, vocab ${engine.config.dVocab}; ${engine.info.computeDtype} on the CPU, ${os.cpus().length} cores`);
console.log(`slice: ${plan.examples.length} examples of ${fullLen.toFixed(0)} tokens (run up to the drawn position: ${meanLen.toFixed(0)} on average), 3 techniques × ${nLayers} layers`);

await runSweep(engine, { ...plan, examples: plan.examples.slice(0, 2) }); // warm-up: page in the weights

const time = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
};
const before = { ...engine.timings };
const fast = await time(() => runSweep(engine, plan));
const split = Object.fromEntries(Object.entries(engine.timings).map(([g, ms]) => [g, (ms - before[g as keyof typeof before]) / 1000]));
// The per-row measures' cost (kl, rank, entropy: an If of the unembedding graph): the same fast
// sweep without them, then with them again, alternating so that drift hits both alike.
const without: number[] = [];
const withAgain: number[] = [fast];
for (let i = 0; i < 2; i++) {
  without.push(await time(() => runSweep(engine, plan, { measures: false })));
  withAgain.push(await time(() => runSweep(engine, plan)));
}
const perExampleMs = (s: number[]) => (Math.min(...s) / plan.examples.length) * 1000;
const naiveSlice = { ...plan, examples: plan.examples.slice(0, naiveCount), strategy: 'naive' as const };
const naive = await time(() => runSweep(engine, naiveSlice));
const naivePerExample = naive / naiveSlice.examples.length;
const fastPerExample = fast / plan.examples.length;

// The floor: every source prompt once, and every row through ln_f + lm_head once, in the sweep's own chunk size.
const rows = plan.examples.length * nLayers * plan.techniques.length;
const floor = await time(async () => {
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
console.log(`measures: fast sweep ${perExampleMs(withAgain).toFixed(1)} ms/example with kl, rank and entropy, ${perExampleMs(without).toFixed(1)} without (best of ${withAgain.length} and ${without.length}): ${(perExampleMs(withAgain) - perExampleMs(without)).toFixed(1)} ms/example, ${((perExampleMs(withAgain) / perExampleMs(without) - 1) * 100).toFixed(1)}%`);
console.log(`naive: ${naive.toFixed(2)} s for ${naiveSlice.examples.length} examples (${(naivePerExample * 1000).toFixed(0)} ms/example)`);
console.log(`floor: ${floor.toFixed(2)} s (one batched source pass + unembedding of all ${rows} rows)`);
console.log(`ratio naive/fast per example: ${(naivePerExample / fastPerExample).toFixed(1)}×   (goal ≥ 50×)`);
console.log(`ratio fast/floor:             ${(fast / floor).toFixed(2)}×   (goal ≤ 3×)`);
