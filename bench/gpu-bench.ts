/**
 * The GPU check in one command, on whichever devices start here (the CPU always; CUDA and WebGPU
 * when their providers start, else skipped with the reason):
 *   1. numerics on a tiny random checkpoint, fp32 and fp16 compute on every device: max |logit|
 *      difference from the CPU's fp32 and from the float64 reference, and logit-lens top-1
 *      agreement with the CPU's fp32, over every layer and position;
 *   2. load time of a GPT-J-6B-shaped random fp16 checkpoint written here (nothing can be
 *      downloaded on a GPU box): 28 layers, d_model 4096, 16 heads, rotary_dim 64, vocab 50400 by
 *      default, smaller with the options below;
 *   3. the seed-sized sweep on it (698 prompts of ~150 tokens, every layer, logit lens +
 *      patchscope + logitscope, fast strategy): sweep time, peak memory (the GPU's used memory from
 *      nvidia-smi on CUDA, sampled while it runs; the process's peak RSS on the CPU) and the time
 *      split (source passes and prefixes / patched runs / unembedding / host).
 *
 *   npx tsx bench/gpu-bench.ts [--devices cpu,cuda,webgpu] [--sweep-device D] [--layers 28] [--d-model 4096]
 *       [--heads 16] [--vocab 50400] [--examples 698] [--words 149] [--dtype float16] [--dir /tmp/gpu-bench]
 *
 * The sweep runs on --sweep-device (default: the first GPU that starts, else the CPU); at GPT-J
 * size that takes hours on a CPU, so give the CPU small sizes and fp32 compute (onnxruntime's CPU
 * fp16 kernels are very slow), e.g. --layers 2 --d-model 256 --heads 4 --examples 16 --dtype float32.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import { parseGptjConfig } from '../src-main/engine/config.ts';
import { parseDevice } from '../src-main/protocol/device.ts';
import { Engine, residRow } from '../src-main/engine/engine.ts';
import type { ComputeType } from '../src-main/engine/graph/layers.ts';
import { probeDevice } from '../src-main/engine/ort-session.ts';
import { prepareSweep } from '../src-main/sweep/prepare.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import { runSweep } from '../src-main/sweep/run-sweep.ts';
import { BUILT_IN_TECHNIQUES } from '../src-main/protocol/techniques.ts';
import { writeTinyGptj } from '../test/fixtures/checkpoint-writer.ts';
import { referenceForward } from '../test/reference/gptj-f64.ts';
import { writeGptjShaped } from './gptj-shaped.ts';

const { values: o } = parseArgs({
  options: {
    devices: { type: 'string', default: 'cpu,cuda,webgpu' },
    'sweep-device': { type: 'string' },
    layers: { type: 'string', default: '28' },
    'd-model': { type: 'string', default: '4096' },
    heads: { type: 'string', default: '16' },
    vocab: { type: 'string', default: '50400' },
    examples: { type: 'string', default: '698' },
    words: { type: 'string', default: '149' }, // one token per word of the list, + BOS: ~150 tokens
    dtype: { type: 'string', default: 'float16' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'gpu-bench') },
  },
});
fs.mkdirSync(o.dir, { recursive: true });
const cacheRoot = path.join(o.dir, 'cache');
const run = promisify(execFile);

/** MiB of GPU memory in use (the first GPU nvidia-smi lists for `index`), or undefined without nvidia-smi. */
async function gpuUsedMiB(index: number): Promise<number | undefined> {
  try {
    const { stdout } = await run('nvidia-smi', [`--id=${index}`, '--query-gpu=memory.used', '--format=csv,noheader,nounits']);
    return Number(stdout.trim());
  } catch {
    return undefined;
  }
}

function peakRssGiB(): number {
  const kb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  return kb / 1024 ** 2;
}

// 1. Which devices start.
const started: string[] = [];
for (const d of o.devices.split(',').map((s) => s.trim())) {
  parseDevice(d, '--devices');
  const probe = await probeDevice(d);
  if (probe.ok) started.push(d);
  console.log(`device ${d}: ${probe.ok ? 'starts' : `skipped (${probe.reason.split('\n')[0]})`}`);
}

// 2. Numerics on a tiny checkpoint.
async function numerics(): Promise<void> {
  const tokens = [50256, 464, 3797, 3332, 319, 262, 2603, 13, 198, 40, 588, 257, 1310];
  const ckpt = writeTinyGptj({ dir: path.join(o.dir, 'tiny'), format: 'safetensors', dtype: 'F32', seed: 5, config: { n_layer: 4, n_embd: 128, n_head: 4, rotary_dim: 8 } });
  const config = parseGptjConfig(ckpt.config, 'config.json');
  const ref = referenceForward({ config, weights: ckpt.weights, tokens });
  const rowsOf = (nLayers: number) => nLayers * tokens.length;
  let base: { logits: Float32Array; top1: Int32Array } | undefined;
  console.log('\nnumerics, tiny random GPT-J (4 layers, d_model 128), one prompt of 13 tokens, logit lens at every layer and position:');
  console.log('device     compute   max |logit − cpu fp32|  max |logit − float64|  lens top-1 = cpu fp32');
  for (const device of started) {
    for (const dtype of ['float32', 'float16'] as ComputeType[]) {
      const engine = await Engine.load({ modelDir: ckpt.dir, device, dtype, cacheRoot });
      const src = await engine.sourcePass(tokens.map((_, p) => ({ tokens, position: p })));
      const rows = new Float32Array(rowsOf(config.nLayers) * config.dModel);
      for (let l = 0; l < config.nLayers; l++) for (let p = 0; p < tokens.length; p++) rows.set(residRow(src, l, p, config.dModel), (l * tokens.length + p) * config.dModel);
      const lens = await engine.unembed({ resid: rows, referenceIds: new Array(rowsOf(config.nLayers)).fill(0), k: 1 });
      await engine.dispose();
      base ??= { logits: src.logits, top1: lens.topkIds };
      let vsCpu = 0;
      let vsRef = 0;
      for (let i = 0; i < src.logits.length; i++) {
        vsCpu = Math.max(vsCpu, Math.abs(src.logits[i] - base.logits[i]));
        vsRef = Math.max(vsRef, Math.abs(src.logits[i] - ref.logits[Math.floor(i / config.dVocab)][i % config.dVocab]));
      }
      const agree = lens.topkIds.filter((t, i) => t === base!.top1[i]).length;
      console.log(`${device.padEnd(9)}  ${dtype.padEnd(8)}  ${vsCpu.toExponential(2).padStart(22)}  ${vsRef.toExponential(2).padStart(21)}  ${`${agree}/${lens.topkIds.length}`.padStart(21)}`);
    }
  }
}

// 3. Load and sweep at scale.
async function atScale(device: string): Promise<void> {
  const nLayers = Number(o.layers);
  const dModel = Number(o['d-model']);
  const nHeads = Number(o.heads);
  const modelDir = path.join(o.dir, `gptj-L${nLayers}-d${dModel}-v${o.vocab}`);
  if (!fs.existsSync(path.join(modelDir, 'model.safetensors'))) {
    const t = performance.now();
    writeGptjShaped({ dir: modelDir, nLayers, dModel, nHeads, rotaryDim: Math.min(64, dModel / nHeads), dVocab: Number(o.vocab), dtype: 'F16' });
    console.log(`\nwrote a random GPT-J-shaped fp16 checkpoint (${(fs.statSync(path.join(modelDir, 'model.safetensors')).size / 1024 ** 3).toFixed(2)} GB) in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const words = 'time year people way day man thing woman life child world school state family group country problem hand part place case week company system'.split(' ');
  const rand = mulberry32(3);
  const data = path.join(o.dir, `prompts-${o.examples}x${o.words}.jsonl`);
  const lines = Array.from({ length: Number(o.examples) }, () => JSON.stringify({ text: Array.from({ length: Number(o.words) }, () => words[Math.floor(rand() * words.length)]).join(' ') }));
  fs.writeFileSync(data, lines.join('\n'));

  const { kind, index } = parseDevice(device);
  const idleMiB = kind === 'cuda' ? await gpuUsedMiB(index) : undefined;
  const t0 = performance.now();
  const engine = await Engine.load({ modelDir, device, dtype: o.dtype as ComputeType, cacheRoot });
  const loadSeconds = (performance.now() - t0) / 1000;
  const loadedMiB = kind === 'cuda' ? await gpuUsedMiB(index) : undefined;
  const spec = {
    modelDir,
    device: kind,
    files: [data],
    protocol: resolveProtocol('logitscope', { limit: Number(o.examples), filter: { maxWords: 100_000, maxChars: 1_000_000 } }),
    techniques: [...BUILT_IN_TECHNIQUES],
    layers: null,
    k: 10,
    strategy: 'fast' as const,
  };
  const { plan } = await prepareSweep(engine, spec);
  const tokens = plan.examples.reduce((s, e) => s + e.tokens.length, 0) / plan.examples.length;
  await runSweep(engine, { ...plan, examples: plan.examples.slice(0, 4) }); // warm-up: first runs allocate and tune

  // Peak device memory: nvidia-smi sampled while the sweep runs (CUDA); the process's peak RSS otherwise.
  let peakMiB = 0;
  const sampler = kind === 'cuda' ? setInterval(() => void gpuUsedMiB(index).then((m) => (peakMiB = Math.max(peakMiB, m ?? 0))), 250) : undefined;
  const before = { ...engine.timings };
  const t1 = performance.now();
  const out = await runSweep(engine, plan);
  const seconds = (performance.now() - t1) / 1000;
  if (sampler) clearInterval(sampler);
  const split = Object.fromEntries(Object.entries(engine.timings).map(([g, ms]) => [g, (ms - before[g as keyof typeof before]) / 1000]));
  await engine.dispose();

  const memory =
    kind === 'cuda'
      ? `GPU memory used: ${idleMiB} MiB idle, ${loadedMiB} MiB after load, peak ${peakMiB} MiB during the sweep (nvidia-smi, whole GPU)`
      : `peak RSS of the process: ${peakRssGiB().toFixed(2)} GiB (weights are memory-mapped, so this includes the page-cache pages touched)`;
  console.log(`\nsweep on ${device}, ${engine.info.computeDtype} compute: ${nLayers} layers, d_model ${dModel}, ${nHeads} heads, vocab ${engine.config.dVocab}`);
  console.log('load s  examples  tokens/example  techniques × layers  sweep s  source s  patched s  unembed s  host s  status');
  console.log(
    `${loadSeconds.toFixed(1).padStart(6)}  ${String(plan.examples.length).padStart(8)}  ${tokens.toFixed(0).padStart(14)}  ${`${plan.techniques.length} × ${plan.layers.length}`.padStart(19)}  ` +
      `${seconds.toFixed(2).padStart(7)}  ${split.full.toFixed(2).padStart(8)}  ${split.step.toFixed(2).padStart(9)}  ${split.unembed.toFixed(2).padStart(9)}  ${split.host.toFixed(2).padStart(6)}  ${out.status}`,
  );
  const stages = Object.entries(engine.info.timings).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(2)} s`);
  console.log(`load stages: ${stages.join(', ')}; ${memory}`);
  console.log('(source = source passes and target prefixes, patched = step runs, host = worker JavaScript and message round trips)');
}

await numerics();
await atScale(o['sweep-device'] ?? started.find((d) => d !== 'cpu') ?? 'cpu');
