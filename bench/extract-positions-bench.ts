/**
 * The logit-lens picture's cost: `extract` over every position of one prompt in one request,
 * against one single-position request per position (what a caller without --positions would do),
 * on the demo model and on a 28-layer random GPT-J-shaped checkpoint. Prints rows per second
 * (a row = one position × layer × technique) and the ratio, measured in this one run.
 *
 *   npx tsx bench/extract-positions-bench.ts [--tokens 32] [--layers 28] [--d-model 256] [--heads 4] [--k 20]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { extractOne } from '../src-main/api/extract-service.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values: o } = parseArgs({
  options: {
    tokens: { type: 'string', default: '32' },
    layers: { type: 'string', default: '28' },
    'd-model': { type: 'string', default: '256' },
    heads: { type: 'string', default: '4' },
    k: { type: 'string', default: '20' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'extract-positions-bench') },
  },
});
const k = Number(o.k);
const TEXT = 'The Eiffel Tower is in Paris, the capital of France. It was built for the 1889 World Fair and is made of iron; every year millions of visitors climb it to see the city below.';

async function measure(label: string, modelDir: string): Promise<void> {
  const engine = await Engine.load({ modelDir, cacheRoot: path.join(o.dir, 'cache') });
  const all = engine.tokenize(TEXT, { bos: false });
  const n = Math.min(all.length, Number(o.tokens));
  // The prompt cut to n tokens, so both models read the same positions.
  const text = engine.tokenizer.decode(all.slice(0, n));
  const positions = { from: 0, to: engine.tokenize(text, { bos: false }).length - 1 };
  const rows = (positions.to + 1) * engine.config.nLayers * 3;
  await extractOne(engine, { text, position: 0, k, bos: false }); // graphs built and target prefixes cached before timing

  const s0 = { ...engine.stats };
  let t = performance.now();
  await extractOne(engine, { text, positions, k, bos: false });
  const pictureMs = performance.now() - t;
  const s1 = { ...engine.stats };
  t = performance.now();
  for (let p = positions.from; p <= positions.to; p++) await extractOne(engine, { text, position: p, k, bos: false });
  const singleMs = performance.now() - t;
  const s2 = { ...engine.stats };
  await engine.dispose();

  const rate = (ms: number) => (rows / (ms / 1000)).toFixed(0);
  console.log(`${label}: ${positions.to + 1} positions × ${engine.config.nLayers} layers × 3 techniques = ${rows} rows, top-${k}`);
  console.log(`  --positions all, one request:     ${pictureMs.toFixed(0)} ms, ${rate(pictureMs)} rows/s (source passes ${s1.sourceRuns - s0.sourceRuns}, source rows ${s1.sourceRows - s0.sourceRows})`);
  console.log(`  one request per position:         ${singleMs.toFixed(0)} ms, ${rate(singleMs)} rows/s (source passes ${s2.sourceRuns - s1.sourceRuns}, source rows ${s2.sourceRows - s1.sourceRows})`);
  console.log(`  ratio (per-position time / picture time): ${(singleMs / pictureMs).toFixed(2)}×`);
}

await measure('demo model (models/demo, 6 layers, d_model 128)', path.resolve('models/demo'));
const shaped = path.join(o.dir, `gptj-${o.layers}x${o['d-model']}`);
if (!fs.existsSync(path.join(shaped, 'config.json'))) {
  const dModel = Number(o['d-model']);
  const nHeads = Number(o.heads);
  writeGptjShaped({ dir: shaped, nLayers: Number(o.layers), dModel, nHeads, rotaryDim: Math.max(2, dModel / nHeads / 4), dtype: 'F32' });
}
await measure(`random GPT-J-shaped checkpoint (${o.layers} layers, d_model ${o['d-model']})`, shaped);
