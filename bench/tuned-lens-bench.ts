/**
 * The tuned-lens fit, timed in its three parts (collect = source passes, accumulate = float64 Gram
 * products in onnxruntime, solve = blocked Cholesky with onnxruntime products), in one run:
 *
 *   1. the demo model (models/demo, d = 128, 6 layers) on its default train slice;
 *   2. a GPT-J-width random checkpoint (d = 4096, --layers blocks, so --layers maps of 4096 × 4096)
 *      on --examples short synthetic train examples;
 *   3. the solve alone at --solve-d with onnxruntime's products and with JavaScript products (the
 *      d³ loop the fit avoids), same matrix, printed as a ratio.
 *
 *   npx tsx bench/tuned-lens-bench.ts [--layers 2] [--examples 256] [--words 12] [--solve-d 1024] [--skip-gptj]
 *
 * Every lens is fitted into a fresh cache folder, so nothing is read from an earlier run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO } from '../src-main/app-paths.ts';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { fitTunedLens } from '../src-main/lens/fit.ts';
import { LENS_SESSIONS_MODULE } from '../src-main/lens/local-sessions.ts';
import { resolveLensSettings } from '../src-main/lens/lens.ts';
import { choleskySolve, jsGemm } from '../src-main/lens/linalg.ts';
import { ortGemm } from '../src-main/lens/sessions.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values: o } = parseArgs({
  options: {
    layers: { type: 'string', default: '2' },
    examples: { type: 'string', default: '256' },
    words: { type: 'string', default: '12' },
    'solve-d': { type: 'string', default: '1024' },
    'skip-gptj': { type: 'boolean', default: false },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'tuned-lens-bench') },
  },
});
const root = o.dir!;
fs.rmSync(path.join(root, 'cache'), { recursive: true, force: true });
fs.mkdirSync(root, { recursive: true });

const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function fitAndReport(label: string, engine: Engine, files: string[], protocol = resolveProtocol('logitscope', {}), train?: { start?: number; end?: number }) {
  const settings = resolveLensSettings({ protocol, files, modelIdentity: engine.info.identity, computeDtype: engine.info.computeDtype, overrides: { train } });
  const started = performance.now();
  const file = await fitTunedLens(engine, settings);
  const total = performance.now() - started;
  const t = file.timings;
  const parts = t.collectSeconds + t.accumulateSeconds + t.solveSeconds;
  console.log(
    `${label}: d=${file.dModel}, ${file.nLayers} blocks (${file.nLayers} maps fitted + the identity), ${file.examples} train examples: ` +
      `collect ${t.collectSeconds.toFixed(2)} s, accumulate ${t.accumulateSeconds.toFixed(2)} s, solve ${t.solveSeconds.toFixed(2)} s ` +
      `(${(t.solveSeconds / file.nLayers).toFixed(2)} s per map); total ${seconds(total)} s, of which selection/tokenizing/writing ${(total / 1000 - parts).toFixed(2)} s`,
  );
  console.log(`  explained variance of the final residual per layer: ${file.layers.map((l) => `${l.layer}: ${l.r2.toFixed(3)}`).join(', ')}`);
}

// 1. The demo model.
{
  const engine = await Engine.load({ modelDir: DEMO.modelDir, cacheRoot: path.join(root, 'cache'), lensSessions: LENS_SESSIONS_MODULE });
  try {
    await fitAndReport('demo', engine, [DEMO.dataFile]);
  } finally {
    await engine.dispose();
  }
}

// 2. GPT-J width.
if (!o['skip-gptj']) {
  const nLayers = Number(o.layers);
  const count = Number(o.examples);
  const modelDir = path.join(root, `gptj-4096-${nLayers}`);
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) writeGptjShaped({ dir: modelDir, nLayers, dModel: 4096, nHeads: 16, rotaryDim: 64, dtype: 'F32' });
  const next = mulberry32(3);
  const words = 'the of and to in is was that for on with as by at from his her it an were are which this be or had not but'.split(' ');
  const data = path.join(root, 'train.jsonl');
  const lines = Array.from({ length: count }, () => JSON.stringify({ text: Array.from({ length: 2 + Math.floor(next() * Number(o.words)) }, () => words[Math.floor(next() * words.length)]).join(' ') }));
  fs.writeFileSync(data, `${lines.join('\n')}\n`);
  const engine = await Engine.load({ modelDir, cacheRoot: path.join(root, 'cache'), lensSessions: LENS_SESSIONS_MODULE });
  try {
    // Every record trains (train slice 0..count of the file, in file order).
    const protocol = resolveProtocol('logitscope', { poolStart: 0, poolEnd: count + 1, evalStart: count, evalEnd: count + 1 });
    await fitAndReport('GPT-J width', engine, [data], protocol, { start: 0, end: count });
  } finally {
    await engine.dispose();
  }
}

// 3. The solve alone: onnxruntime products against JavaScript products, same matrix.
{
  const d = Number(o['solve-d']);
  const next = mulberry32(5);
  const rows = 2 * d;
  const x = Float64Array.from({ length: rows * d }, () => next() - 0.5);
  // A = XᵀX + λI (SPD), B = a random right-hand side [d, d].
  const xt = new Float64Array(d * rows);
  for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) xt[j * rows + i] = x[i * d + j];
  const gemm = ortGemm('cpu');
  const a = await gemm(xt, x, new Float64Array(d * d), d, rows, d);
  for (let i = 0; i < a.length; i++) a[i] = -a[i];
  for (let i = 0; i < d; i++) a[i * d + i] += 1e-3 * d;
  const b = Float64Array.from({ length: d * d }, () => next() - 0.5);
  let t = performance.now();
  const wOrt = await choleskySolve(Float64Array.from(a), b, d, d, gemm);
  const ortMs = performance.now() - t;
  t = performance.now();
  const wJs = await choleskySolve(Float64Array.from(a), b, d, d, jsGemm);
  const jsMs = performance.now() - t;
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < wOrt.length; i++) {
    diff += (wOrt[i] - wJs[i]) ** 2;
    norm += wJs[i] ** 2;
  }
  console.log(`solve at d=${d} (d right-hand sides): onnxruntime products ${seconds(ortMs)} s, JavaScript products ${seconds(jsMs)} s: ${(jsMs / ortMs).toFixed(1)}× (relative difference ${Math.sqrt(diff / norm).toExponential(1)})`);
}
