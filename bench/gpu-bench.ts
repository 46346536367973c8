/**
 * The GPU check in one command (issue: CUDA path verified at GPT-J 6B scale):
 *   1. CPU vs CUDA numerics on a tiny checkpoint, fp32 and fp16 weights: max |logit difference| and
 *      top-1 agreement over every layer's logit lens;
 *   2. a GPT-J-6B-shaped random fp16 checkpoint (28 layers, d_model 4096, 16 heads, rotary_dim 64,
 *      vocab 50400), written here since nothing can be downloaded on a GPU box;
 *   3. a seed-sized sweep on it (698 prompts of ~150 tokens, 28 layers, logit lens + patchscope +
 *      logitscope, fast strategy): load time, sweep time, GPU memory, and the time split between
 *      source passes, patched runs and unembedding.
 *
 *   npx tsx bench/gpu-bench.ts [--device cuda] [--layers 28] [--d-model 4096] [--heads 16] [--examples 698] [--dir /tmp/gpu-bench]
 *
 * With --device cpu and small sizes it is a dry run of the same script (step 1 is then skipped).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { parseGptjConfig } from '../src-main/engine/config.ts';
import { Engine, residRow } from '../src-main/engine/engine.ts';
import type { Device } from '../src-main/engine/ort-session.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { resolveProtocol } from '../src-main/sweep/protocol.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import { BUILT_IN_TECHNIQUES } from '../src-main/sweep/techniques.ts';
import { writeTinyGptj } from '../test/fixtures/checkpoint-writer.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values: o } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    layers: { type: 'string', default: '28' },
    'd-model': { type: 'string', default: '4096' },
    heads: { type: 'string', default: '16' },
    examples: { type: 'string', default: '698' },
    words: { type: 'string', default: '110' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'gpu-bench') },
  },
});
const device = o.device as Device;
fs.mkdirSync(o.dir, { recursive: true });
const cacheRoot = path.join(o.dir, 'cache');

function gpuMemory(): string {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,memory.used,memory.total', '--format=csv,noheader'], { encoding: 'utf8' }).trim();
  } catch {
    return 'nvidia-smi not available';
  }
}

async function numerics(): Promise<void> {
  const tokens = [50256, 464, 3797, 3332, 319, 262, 2603, 13, 198, 40, 588, 257, 1310];
  for (const dtype of ['F32', 'F16'] as const) {
    const ckpt = writeTinyGptj({ dir: path.join(o.dir, `tiny-${dtype}`), format: 'safetensors', dtype, seed: 5, config: { n_layer: 4, n_embd: 128, n_head: 4, rotary_dim: 8 } });
    const config = parseGptjConfig(ckpt.config, 'config.json');
    const results: { logits: Float32Array; top1: Int32Array }[] = [];
    for (const d of ['cpu', 'cuda'] as const) {
      const engine = await Engine.load({ modelDir: ckpt.dir, device: d, cacheRoot });
      const src = await engine.sourcePass(tokens.map((_, p) => ({ tokens, position: p })));
      const rows = new Float32Array(config.nLayers * tokens.length * config.dModel);
      for (let l = 0; l < config.nLayers; l++) for (let p = 0; p < tokens.length; p++) rows.set(residRow(src, l, p, config.dModel), (l * tokens.length + p) * config.dModel);
      const lens = await engine.unembed({ resid: rows, referenceIds: new Array(config.nLayers * tokens.length).fill(0), k: 1 });
      results.push({ logits: src.logits, top1: lens.topkIds });
      await engine.dispose();
    }
    let maxDiff = 0;
    for (let i = 0; i < results[0].logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(results[0].logits[i] - results[1].logits[i]));
    const agree = results[0].top1.filter((t, i) => t === results[1].top1[i]).length / results[0].top1.length;
    console.log(`numerics ${dtype} weights: max |logit cpu − cuda| = ${maxDiff.toExponential(2)}; logit-lens top-1 agreement ${(agree * 100).toFixed(1)}% over ${results[0].top1.length} rows`);
  }
}

async function sweepAtScale(): Promise<void> {
  const nLayers = Number(o.layers);
  const dModel = Number(o['d-model']);
  const modelDir = path.join(o.dir, `gptj-L${nLayers}-d${dModel}`);
  if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
    const t = performance.now();
    writeGptjShaped({ dir: modelDir, nLayers, dModel, nHeads: Number(o.heads), rotaryDim: 64, dtype: 'F16' });
    console.log(`wrote a random GPT-J-shaped fp16 checkpoint in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const words = 'time year people way day man thing woman life child world school state family group country problem hand part place case week company system'.split(' ');
  const rand = mulberry32(3);
  const data = path.join(o.dir, 'prompts.jsonl');
  const lines = Array.from({ length: Number(o.examples) }, () => JSON.stringify({ text: Array.from({ length: Number(o.words) }, () => words[Math.floor(rand() * words.length)]).join(' ') }));
  fs.writeFileSync(data, lines.join('\n'));

  const t0 = performance.now();
  const engine = await Engine.load({ modelDir, device, cacheRoot });
  const loadSeconds = (performance.now() - t0) / 1000;
  console.log(`load: ${loadSeconds.toFixed(1)} s (${JSON.stringify(engine.info.timings)}), ${engine.info.computeDtype} on ${engine.info.device}; GPU: ${gpuMemory()}`);
  const spec = {
    modelDir,
    device,
    files: [data],
    protocol: resolveProtocol('logitscope', { filter: { maxWords: 10_000, maxChars: 100_000 } }),
    techniques: [...BUILT_IN_TECHNIQUES],
    layers: null,
    k: 10,
    strategy: 'fast' as const,
  };
  const { plan } = await prepareSweep(engine, spec);
  const tokens = plan.examples.reduce((s, e) => s + e.tokens.length, 0) / plan.examples.length;
  await runSweep(engine, { ...plan, examples: plan.examples.slice(0, 4) }); // warm-up
  const before = { ...engine.timings };
  const t1 = performance.now();
  const out = await runSweep(engine, plan);
  const seconds = (performance.now() - t1) / 1000;
  const split = Object.entries(engine.timings).map(([g, ms]) => `${g} ${((ms - before[g as keyof typeof before]) / 1000).toFixed(2)} s`);
  console.log(`sweep: ${plan.examples.length} prompts of ${tokens.toFixed(0)} tokens, 3 techniques × ${nLayers} layers: ${seconds.toFixed(2)} s (${out.status})`);
  console.log(`split: ${split.join(', ')} (full = source passes and prefixes, step = patched runs)`);
  console.log(`GPU after the sweep: ${gpuMemory()}`);
  await engine.dispose();
}

if (device === 'cuda') await numerics();
await sweepAtScale();
