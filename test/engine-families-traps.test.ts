/**
 * The places where a family is easy to get almost right: each test pins one of them, on tiny
 * checkpoints against the float64 reference, or on the parsed config, and where it can, shows that
 * the trap moves the numbers (so a wrong reading could not pass).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LogitscopeError } from '../src-main/errors.ts';
import { type ModelConfig, parseModelConfig } from '../src-main/engine/config.ts';
import { type Ctx, inverseFrequencies, rotary, rotaryTables } from '../src-main/engine/graph/layers.ts';
import { GraphBuilder } from '../src-main/engine/graph/onnx-builder.ts';
import { allWeightNames } from '../src-main/engine/graph/weight-names.ts';
import { createSession } from '../src-main/engine/ort-session.ts';
import { Engine, residRow } from '../src-main/engine/engine.ts';
import { loadWorker, maxAbsDiff, residualError, rewriteWeights } from './fixtures/family-engine.ts';
import { type Family, type TinyFamily, writeTinyFamily } from './fixtures/hf-families.ts';
import { llama3InvFreq, ropeInvFreq } from './reference/families-config.ts';
import { referenceForward, referenceHead } from './reference/families-f64.ts';

const TOL = 1e-4;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-families-traps-'));
const cacheRoot = path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const TOKENS = [1, 17, 42, 8, 25, 11, 30, 3, 60, 7];

let n = 0;
function tiny(family: Family, overrides: Record<string, unknown> = {}, seed = 7): TinyFamily {
  return writeTinyFamily({ dir: path.join(tmp, `${family}-${n++}`), family, seed, overrides });
}

/** The engine's largest |Δ| from the reference over every layer and position of TOKENS. */
async function engineError(ckpt: TinyFamily): Promise<number> {
  const { worker, info } = await loadWorker({ dir: ckpt.dir, cacheRoot });
  try {
    return await residualError(worker, info, ckpt, TOKENS);
  } finally {
    await worker.terminate();
  }
}

/** How far two checkpoints' reference forwards are apart (last layer, last position): a trap must move the numbers. */
function apart(a: TinyFamily, b: TinyFamily): number {
  const last = (c: TinyFamily) => referenceForward({ family: c.family, config: c.config, weights: c.tensors, tokens: TOKENS }).residPost.at(-1)!.at(-1)!;
  return maxAbsDiff(last(a), last(b));
}

describe('grouped-query attention', () => {
  test('with 1, 2 and 4 key/value heads for 4 query heads, every residual matches the reference (query head h reads kv head h / (H / KV))', async () => {
    for (const kv of [1, 2, 4]) expect(await engineError(tiny('llama', { num_key_value_heads: kv })), `${kv} kv heads`).toBeLessThan(TOL);
  });
});

describe('rotary layouts', () => {
  /** One head of 8 dims at position 3 through the engine's rotary, as a tiny graph. */
  async function rotate(o: { adjacent: boolean; rotaryDim: number }, x: number[]): Promise<Float32Array> {
    const base = parseModelConfig({ model_type: 'llama', hidden_size: 8, num_attention_heads: 1, num_hidden_layers: 1, intermediate_size: 8, max_position_embeddings: 16, vocab_size: 4 }, 'config.json');
    const c: ModelConfig = { ...base, rotaryAdjacentPairs: o.adjacent, rotaryDim: o.rotaryDim };
    const b = new GraphBuilder('rotary');
    const ctx: Ctx = { b, c, dt: 'float32', w: (k) => k };
    const input = b.input('x', 'float32', [1, 1, 8]); // [rows, H, dh]
    b.output(rotary(ctx, input, 3, rotaryTables(ctx, b.input('position', 'int64', [1]), 1)), 'y', 'float32', [1, 1, 8]);
    const session = await createSession(b.encode(), { device: 'cpu', weightFolder: '.', label: 'rotary' });
    const out = await session.run({ x: { type: 'float32', data: Float32Array.from(x), dims: [1, 1, 8] }, position: { type: 'int64', data: BigInt64Array.from([3n]), dims: [1] } }, ['y']);
    await session.release();
    return out.y.data as Float32Array;
  }
  const x = [1, 2, 3, 4, 5, 6, 7, 8];
  /** x with the pairs (i, j) rotated by 3·θ_k, θ_k = 10000^(-2k/rd), k the pair's index. */
  function expected(pairs: [number, number][], rd: number): number[] {
    const y = [...x];
    pairs.forEach(([i, j], k) => {
      const a = 3 / 10000 ** ((2 * k) / rd);
      y[i] = x[i] * Math.cos(a) - x[j] * Math.sin(a);
      y[j] = x[j] * Math.cos(a) + x[i] * Math.sin(a);
    });
    return y;
  }

  test("GPT-J's rotate-every-two pairs dims (2i, 2i+1); the others' rotate-half pairs (i, i + rotaryDim/2)", async () => {
    expect(maxAbsDiff(await rotate({ adjacent: true, rotaryDim: 8 }, x), expected([[0, 1], [2, 3], [4, 5], [6, 7]], 8))).toBeLessThan(1e-6);
    expect(maxAbsDiff(await rotate({ adjacent: false, rotaryDim: 8 }, x), expected([[0, 4], [1, 5], [2, 6], [3, 7]], 8))).toBeLessThan(1e-6);
    // The two layouts really differ on this input.
    expect(maxAbsDiff(expected([[0, 1], [2, 3], [4, 5], [6, 7]], 8), expected([[0, 4], [1, 5], [2, 6], [3, 7]], 8))).toBeGreaterThan(0.1);
  });

  test('partial rotary (NeoX rotary_pct) rotates the first rotaryDim dims as halves of rotaryDim and passes the rest through', async () => {
    expect(maxAbsDiff(await rotate({ adjacent: false, rotaryDim: 4 }, x), expected([[0, 2], [1, 3]], 4))).toBeLessThan(1e-6);
  });

  test("Llama 3's rope_scaling: the engine's frequencies are the reference's (one pair kept, one blended, the rest divided by the factor)", () => {
    const scaling = { factor: 8, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 32, rope_type: 'llama3' };
    const c = parseModelConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, head_dim: 16, num_hidden_layers: 1, intermediate_size: 8, max_position_embeddings: 128, vocab_size: 4, rope_scaling: scaling }, 'config.json');
    const plain = ropeInvFreq(10000, 16);
    const want = llama3InvFreq(plain, scaling);
    expect(maxAbsDiff(inverseFrequencies(c), want)).toBeLessThan(1e-12);
    const kept = want.filter((f, i) => f === plain[i]).length;
    const divided = want.filter((f, i) => Math.abs(f - plain[i] / 8) < 1e-15).length;
    expect([kept, want.length - kept - divided, divided]).toEqual([1, 1, 6]);
  });

  test('a Llama 3 rope_scaling checkpoint and the same weights without it both match their references, and differ from each other', async () => {
    const scaled = tiny('llama');
    const plain = tiny('llama', { rope_scaling: null });
    expect(await engineError(scaled)).toBeLessThan(TOL);
    expect(await engineError(plain)).toBeLessThan(TOL);
    expect(apart(scaled, plain)).toBeGreaterThan(1e-2);
  });
});

describe("GPT-NeoX's fused query_key_value", () => {
  test('rows grouped per head [H, 3, dh] are read as such: the same rows regrouped [3, H, dh] make another model, and the engine follows each', async () => {
    const original = tiny('gpt_neox');
    const [H, dh, D] = [4, 16, 64];
    // Row (h, j, i) of the per-head layout moved to row (j, h, i): what a reader of [3, H, dh] blocks would expect.
    const regroup = (values: Float64Array, width: number) => {
      const out = new Float64Array(values.length);
      for (let h = 0; h < H; h++) for (let j = 0; j < 3; j++) for (let i = 0; i < dh; i++) {
        out.set(values.subarray(((h * 3 + j) * dh + i) * width, ((h * 3 + j) * dh + i + 1) * width), ((j * H + h) * dh + i) * width);
      }
      return out;
    };
    const copy = writeTinyFamily({ dir: path.join(tmp, 'neox-regrouped'), family: 'gpt_neox', seed: 7 });
    const regrouped = rewriteWeights(copy, (name, values) => ({ name, values: name.endsWith('query_key_value.weight') ? regroup(values, D) : name.endsWith('query_key_value.bias') ? regroup(values, 1) : values }));
    expect(await engineError(original)).toBeLessThan(TOL);
    expect(await engineError(regrouped)).toBeLessThan(TOL);
    expect(apart(original, regrouped)).toBeGreaterThan(1e-2);
  });

  test('a sequential residual (use_parallel_residual false), half-width rotary and another rotary_emb_base match the reference', async () => {
    expect(await engineError(tiny('gpt_neox', { use_parallel_residual: false, rotary_pct: 0.5, rotary_emb_base: 500 }))).toBeLessThan(TOL);
  });

  test('rotary_pct defaults to 0.25 and the rotary base to rotary_emb_base', () => {
    const c = parseModelConfig({ model_type: 'gpt_neox', hidden_size: 256, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 8, max_position_embeddings: 16, vocab_size: 4, rotary_emb_base: 500 }, 'config.json');
    expect([c.rotaryDim, c.rotaryBase, c.parallelAttnMlp, c.tiedEmbeddings]).toEqual([16, 500, true, false]);
  });
});

describe("Gemma 2's norms, scales and caps", () => {
  const gemma = (o: Record<string, unknown>) =>
    parseModelConfig({ model_type: 'gemma2', hidden_size: 3584, num_attention_heads: 16, num_key_value_heads: 8, num_hidden_layers: 4, intermediate_size: 8, vocab_size: 4, max_position_embeddings: 16, ...o }, 'config.json');

  test('head_dim and query_pre_attn_scalar default to 256; the √d normaliser is rounded to the checkpoint dtype (bf16: 59.75)', () => {
    const c = gemma({ torch_dtype: 'bfloat16' });
    expect([c.dHead, c.attnScale, c.embedScale, c.normWeightPlusOne]).toEqual([256, 1 / 16, 59.75, true]);
    expect(gemma({ torch_dtype: 'float32' }).embedScale).toBe(Math.fround(Math.sqrt(3584)));
    expect(c.attnTypes).toEqual(['local', 'global', 'local', 'global']);
  });

  test('hook_embed is the embedding row times √d, and norms of w ≈ 0 scale by (1 + w): every residual matches the reference', async () => {
    const ckpt = tiny('gemma2');
    const { worker, info } = await loadWorker({ dir: ckpt.dir, cacheRoot });
    try {
      const out = await worker.call('source', { items: [{ tokens: TOKENS, position: 2 }], names: ['p'] });
      const row = ckpt.tensors.get('model.embed_tokens.weight')!.subarray(TOKENS[2] * 64, (TOKENS[2] + 1) * 64);
      expect(maxAbsDiff(out.resid.subarray(0, 64), row.map((v) => v * 8))).toBeLessThan(1e-6);
      expect(await residualError(worker, info, ckpt, TOKENS)).toBeLessThan(TOL);
    } finally {
      await worker.terminate();
    }
    // The fixture's norm weights sit around 0, so a norm reading w for (1 + w) would be far off.
    expect(Math.max(...[...ckpt.tensors].filter(([k]) => k.endsWith('layernorm.weight')).map(([, w]) => Math.max(...w.map(Math.abs))))).toBeLessThan(2);
  });

  test('soft-capped logits stay inside ±cap and match the reference; without the caps the same weights give other numbers, also matched', async () => {
    const capped = tiny('gemma2');
    const uncapped = tiny('gemma2', { attn_logit_softcapping: null, final_logit_softcapping: null });
    for (const [ckpt, bounded] of [[capped, true], [uncapped, false]] as const) {
      const { worker, info } = await loadWorker({ dir: ckpt.dir, cacheRoot });
      try {
        expect(await residualError(worker, info, ckpt, TOKENS)).toBeLessThan(TOL);
        const h = referenceForward({ family: 'gemma2', config: ckpt.config, weights: ckpt.tensors, tokens: TOKENS }).residPost.at(-1)!.at(-1)!;
        const { logits } = await worker.call('unembed', { resid: Float32Array.from(h), referenceIds: [0], k: 1, logits: true, names: ['last'] });
        expect(maxAbsDiff(logits!, referenceHead('gemma2', ckpt.config, ckpt.tensors, h))).toBeLessThan(TOL);
        // ≤, not <: in fp32 tanh of a large score is exactly 1.
        expect(Math.max(...logits!.map(Math.abs)) <= (capped.config.final_logit_softcapping as number), bounded ? 'capped' : 'uncapped').toBe(bounded);
      } finally {
        await worker.terminate();
      }
    }
    expect(apart(capped, uncapped)).toBeGreaterThan(1e-2);
  });
});

describe('heads and weight names', () => {
  test('a tied head reads the embedding matrix, an untied one lm_head; both match the reference', async () => {
    const tied = tiny('llama', { tie_word_embeddings: true });
    const untied = tiny('llama', { tie_word_embeddings: false });
    expect(tied.tensors.has('lm_head.weight')).toBe(false);
    for (const ckpt of [tied, untied]) {
      const { worker, info } = await loadWorker({ dir: ckpt.dir, cacheRoot });
      try {
        expect(allWeightNames(info.config).includes('lm_head.weight')).toBe(ckpt === untied);
        const h = referenceForward({ family: 'llama', config: ckpt.config, weights: ckpt.tensors, tokens: TOKENS }).residPost.at(-1)!.at(-1)!;
        const { logits } = await worker.call('unembed', { resid: Float32Array.from(h), referenceIds: [0], k: 1, logits: true, names: ['last'] });
        expect(maxAbsDiff(logits!, referenceHead('llama', ckpt.config, ckpt.tensors, h))).toBeLessThan(TOL);
      } finally {
        await worker.terminate();
      }
    }
  });

  test("NeoX's untied head reads as embed_out (the hub's files) or lm_head (as transformers 5 saves it)", async () => {
    const hub = tiny('gpt_neox');
    const renamed = rewriteWeights(tiny('gpt_neox'), (name, values) => ({ name: name === 'embed_out.weight' ? 'lm_head.weight' : name, values }));
    expect(await engineError(hub)).toBeLessThan(TOL);
    const { worker, info } = await loadWorker({ dir: renamed.dir, cacheRoot });
    try {
      expect(allWeightNames(info.config)).toContain('lm_head.weight');
      const h = referenceForward({ family: 'gpt_neox', config: hub.config, weights: hub.tensors, tokens: TOKENS }).residPost.at(-1)!.at(-1)!;
      const { logits } = await worker.call('unembed', { resid: Float32Array.from(h), referenceIds: [0], k: 1, logits: true, names: ['last'] });
      // The reference reads the hub's name, which holds the same values.
      expect(maxAbsDiff(logits!, referenceHead('gpt_neox', hub.config, hub.tensors, h))).toBeLessThan(TOL);
    } finally {
      await worker.terminate();
    }
  });

  test('GPT-2 keys with the "transformer." prefix (GPT2LMHeadModel) read as well as the canonical file without it', async () => {
    const canonical = tiny('gpt2');
    const prefixed = rewriteWeights(tiny('gpt2'), (name, values) => ({ name: `transformer.${name}`, values }));
    expect(await engineError(canonical)).toBeLessThan(TOL);
    const { worker, info } = await loadWorker({ dir: prefixed.dir, cacheRoot });
    await worker.terminate();
    expect(info.config.weightPrefix).toBe('transformer.');
    // The reference reads the canonical names, which hold the same values.
    expect(await engineError({ ...prefixed, tensors: canonical.tensors })).toBeLessThan(TOL);
  });
});

describe('the Engine', () => {
  test('loads a family through its public API unchanged: config.family says which, and a source pass matches the reference', async () => {
    const ckpt = tiny('gpt_neox');
    const engine = await Engine.load({ modelDir: ckpt.dir, cacheRoot });
    try {
      expect([engine.config.family, engine.config.modelType, engine.config.nKeyValueHeads]).toEqual(['gpt_neox', 'gpt_neox', 4]);
      const want = referenceForward({ family: 'gpt_neox', config: ckpt.config, weights: ckpt.tensors, tokens: TOKENS });
      const src = await engine.sourcePass([{ tokens: TOKENS, position: 4 }]);
      expect(maxAbsDiff(residRow(src, 1, 0, engine.config.dModel), want.residPost[1][4])).toBeLessThan(TOL);
      expect(maxAbsDiff(src.logits, want.logits[4])).toBeLessThan(TOL);
    } finally {
      await engine.dispose();
    }
  });
});

describe('checkpoint files', () => {
  test('every family saved as pytorch_model.bin reads as its safetensors does', async () => {
    for (const family of ['llama', 'gemma2', 'gpt_neox', 'gpt2'] as const) {
      expect(await engineError(rewriteWeights(tiny(family), undefined, 'bin')), family).toBeLessThan(TOL);
    }
  });
});

describe('sliding windows', () => {
  test("Mistral's window (4, within a 10-token prompt) is exact: it matches the reference, and the same weights without a window differ", async () => {
    const windowed = tiny('mistral');
    const full = tiny('mistral', { sliding_window: null });
    expect(await engineError(windowed)).toBeLessThan(TOL);
    expect(await engineError(full)).toBeLessThan(TOL);
    expect(apart(windowed, full)).toBeGreaterThan(1e-2);
  });

  test('Qwen2 slides only with use_sliding_window, in the layers from max_window_layers up', () => {
    const qwen = (o: Record<string, unknown>) =>
      parseModelConfig({ model_type: 'qwen2', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 4, intermediate_size: 8, max_position_embeddings: 16, vocab_size: 4, sliding_window: 4, ...o }, 'config.json');
    expect(qwen({ use_sliding_window: false }).windowSize).toBeNull();
    expect(qwen({ use_sliding_window: true, max_window_layers: 2 }).attnTypes).toEqual(['global', 'global', 'local', 'local']);
    expect([qwen({}).qkvBias, qwen({}).attnOutBias]).toEqual([true, false]);
  });
});

describe('refusals', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e instanceof LogitscopeError ? e.code : String(e);
    }
    return 'no error';
  };
  const llama = { model_type: 'llama', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 8, max_position_embeddings: 16, vocab_size: 4 };

  test('a rope scaling other than llama3 or linear is a model_feature_unsupported error, not a silent wrong answer', () => {
    expect(code(() => parseModelConfig({ ...llama, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'config.json'))).toBe('model_feature_unsupported');
  });

  test('an unknown model_type is model_type_unsupported; key/value heads that do not divide the heads are config_invalid', () => {
    expect(code(() => parseModelConfig({ ...llama, model_type: 'bloom' }, 'config.json'))).toBe('model_type_unsupported');
    expect(code(() => parseModelConfig({ ...llama, num_attention_heads: 4, num_key_value_heads: 3 }, 'config.json'))).toBe('config_invalid');
  });
});
