/**
 * The families' float64 reference checked without Hugging Face: properties any correct forward of
 * these architectures has (causality, patching, GQA as a special MHA, windows and soft-caps that
 * vanish in the limit), equivalences between families (GPT-NeoX with full rotary is GPT-J after a
 * permutation of head dims), and first positions recomputed here in a different style.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blockWeightNames, type GptjConfig } from '../src-main/engine/config.ts';
import { FAMILIES, writeTinyFamily, type Family, type TinyFamilyOptions } from './fixtures/hf-families.ts';
import { referenceForward, referenceHead, referenceLogitLens } from './reference/families-f64.ts';
import { llama3InvFreq, resolveFamily, roundToDtype, ropeInvFreq } from './reference/families-config.ts';
import { erf, rotateHalf } from './reference/families-math.ts';
import { applyRotary, referenceForward as gptjForward } from './reference/gptj-f64.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'families-self-check-'));
let n = 0;
const tiny = (opts: Omit<TinyFamilyOptions, 'dir'>) => writeTinyFamily({ dir: path.join(tmp, String(n++)), ...opts });
const tokens = [5, 40, 7, 100, 260, 3, 9, 12];
const run = (m: ReturnType<typeof tiny>, toks = tokens) => referenceForward({ family: m.family, config: m.config, weights: m.tensors, tokens: toks });

function maxDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let max = 0;
  a.forEach((row, i) => Array.from(row).forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i][j])))));
  return max;
}
const allLayers = (r: ReturnType<typeof run>) => [...r.residPost.flat(), ...r.logits];

describe.each(FAMILIES)('the float64 reference for %s', (family: Family) => {
  const m = tiny({ family, seed: 3 });
  const base = run(m);

  it('returns embeddings, every layer and logits with the shapes of the config', () => {
    const d = resolveFamily(family, m.config);
    expect(base.embeddings.map((v) => v.length)).toEqual(tokens.map(() => d.dModel));
    expect(base.residPost.map((layer) => layer.length)).toEqual(Array(d.nLayers).fill(tokens.length));
    expect(base.logits.map((v) => v.length)).toEqual(tokens.map(() => m.config.vocab_size));
    expect(base.logits[2]).toEqual(referenceHead(family, m.config, m.tensors, base.residPost[d.nLayers - 1][2]));
  });

  it('is causal: changing token 4 leaves positions 0-3 exactly as they were', () => {
    const changed = run(m, tokens.map((t, i) => (i === 4 ? 41 : t)));
    for (const layer of changed.residPost.keys()) {
      expect(changed.residPost[layer].slice(0, 4)).toEqual(base.residPost[layer].slice(0, 4));
      expect(maxDiff(changed.residPost[layer].slice(4), base.residPost[layer].slice(4))).toBeGreaterThan(1e-3);
    }
  });

  it('a patch at (layer, p) changes only positions ≥ p, and the patched output is the vector', () => {
    const vector = Float64Array.from({ length: base.embeddings[0].length }, (_, i) => Math.sin(i));
    for (const layer of [-1, 0, base.residPost.length - 1]) {
      const patched = referenceForward({ family, config: m.config, weights: m.tensors, tokens, patch: { layer, position: 3, vector } });
      expect(layer === -1 ? patched.embeddings[3] : patched.residPost[layer][3]).toEqual(vector);
      for (const l of patched.residPost.keys()) expect(patched.residPost[l].slice(0, 3)).toEqual(base.residPost[l].slice(0, 3));
      expect(patched.logits.slice(0, 3)).toEqual(base.logits.slice(0, 3));
      expect(maxDiff(patched.logits.slice(3), base.logits.slice(3))).toBeGreaterThan(1e-3);
    }
  });

  it('the logit lens is the log-softmax of the head: probabilities sum to one, ordered like the logits', () => {
    const h = base.residPost[0][5];
    const lens = referenceLogitLens(family, m.config, m.tensors, h);
    const logits = referenceHead(family, m.config, m.tensors, h);
    expect(lens.reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 12);
    expect(lens[7] - lens[9]).toBeCloseTo(logits[7] - logits[9], 12);
  });
});

describe('grouped-query attention, sliding windows, soft-caps and tied heads', () => {
  it('GQA with 2 kv heads equals MHA whose 4 kv heads copy them in groups (query heads 0,1 → kv 0; 2,3 → kv 1)', () => {
    const gqa = tiny({ family: 'llama', seed: 4 });
    const mha = tiny({ family: 'llama', seed: 4, overrides: { num_key_value_heads: 4 } });
    const weights = new Map(gqa.tensors);
    const dh = 16;
    for (let l = 0; l < 3; l++) {
      for (const proj of ['k_proj', 'v_proj']) {
        const name = `model.layers.${l}.self_attn.${proj}.weight`;
        const src = gqa.tensors.get(name)!; // [2·dh, 64]
        const rows = (kv: number) => src.slice(kv * dh * 64, (kv + 1) * dh * 64);
        weights.set(name, Float64Array.from([...rows(0), ...rows(0), ...rows(1), ...rows(1)]));
      }
    }
    const viaMha = referenceForward({ family: 'llama', config: mha.config, weights, tokens });
    expect(maxDiff(allLayers(viaMha), allLayers(run(gqa)))).toBeLessThan(1e-12);
  });

  it('a sliding window at least as long as the prompt is full attention; a shorter one changes later positions only', () => {
    const full = run(tiny({ family: 'mistral', seed: 5, overrides: { sliding_window: null } }));
    const wide = run(tiny({ family: 'mistral', seed: 5, overrides: { sliding_window: tokens.length } }));
    const narrow = run(tiny({ family: 'mistral', seed: 5, overrides: { sliding_window: 3 } }));
    expect(wide).toEqual(full);
    // Position p sees p-2..p: positions 0-2 see everything before them either way.
    for (const l of full.residPost.keys()) expect(narrow.residPost[l].slice(0, 3)).toEqual(full.residPost[l].slice(0, 3));
    expect(maxDiff(narrow.logits.slice(3), full.logits.slice(3))).toBeGreaterThan(1e-3);
  });

  it("Gemma 2's sliding window applies to layers 0 and 2 only, unless layer_types says otherwise", () => {
    const d = resolveFamily('gemma2', tiny({ family: 'gemma2', seed: 6 }).config);
    expect(d.windows).toEqual([4, null, 4, null]);
    const swapped = tiny({ family: 'gemma2', seed: 6, overrides: { layer_types: ['full_attention', 'sliding_attention', 'full_attention', 'full_attention'] } });
    expect(resolveFamily('gemma2', swapped.config).windows).toEqual([null, 4, null, null]);
  });

  it('a soft-cap tending to infinity is no cap; Gemma 2 default caps bend the scores and logits', () => {
    const none = run(tiny({ family: 'gemma2', seed: 7, overrides: { attn_logit_softcapping: null, final_logit_softcapping: null } }));
    const huge = run(tiny({ family: 'gemma2', seed: 7, overrides: { attn_logit_softcapping: 1e9, final_logit_softcapping: 1e9 } }));
    const capped = tiny({ family: 'gemma2', seed: 7 });
    expect(maxDiff(allLayers(huge), allLayers(none))).toBeLessThan(1e-9);
    expect(maxDiff(run(capped).residPost[0], none.residPost[0])).toBeGreaterThan(1e-3);
    const cap = capped.config.final_logit_softcapping as number;
    for (const row of run(capped).logits) expect(Math.max(...row.map(Math.abs))).toBeLessThan(cap);
  });

  it('a tied head equals an untied head whose lm_head holds the embedding matrix', () => {
    for (const [family, head] of [['llama', 'lm_head.weight'], ['gpt_neox', 'embed_out.weight']] as const) {
      const tied = tiny({ family, seed: 8, overrides: { tie_word_embeddings: true } });
      const untied = tiny({ family, seed: 8, overrides: { tie_word_embeddings: false } });
      expect(tied.tensors.has(head)).toBe(false);
      const embed = family === 'llama' ? 'model.embed_tokens.weight' : 'gpt_neox.embed_in.weight';
      const weights = new Map(untied.tensors).set(head, tied.tensors.get(embed)!);
      for (const [k, v] of tied.tensors) weights.set(k, v);
      expect(referenceForward({ family, config: untied.config, weights, tokens })).toEqual(run(tied));
    }
  });
});

describe('rotary variants', () => {
  it("llama3 rope_scaling keeps the high-frequency pair, divides the low ones by the factor, interpolates between", () => {
    const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 };
    const plain = ropeInvFreq(10000, 16); // wavelengths 6.3, 19.9, 62.8, … against the bounds 32/4 = 8 and 32/1 = 32
    const scaled = llama3InvFreq(plain, scaling);
    expect(scaled[0]).toBe(plain[0]);
    for (let i = 2; i < 8; i++) expect(scaled[i]).toBeCloseTo(plain[i] / 8, 15);
    expect(scaled[1]).toBeLessThan(plain[1]);
    expect(scaled[1]).toBeGreaterThan(plain[1] / 8);
    // smooth = (32 / wavelen - 1) / 3 blends f/8 and f.
    const smooth = (32 / ((2 * Math.PI) / plain[1]) - 1) / 3;
    expect(scaled[1]).toBeCloseTo((1 - smooth) * (plain[1] / 8) + smooth * plain[1], 15);
    const config = tiny({ family: 'llama', seed: 9 }).config;
    expect(resolveFamily('llama', config).invFreq).toEqual(scaled);
    expect(resolveFamily('llama', { ...config, rope_scaling: null }).invFreq).toEqual(plain);
  });

  it('rotate-half on dims (i, i + d/2) is GPT-J rotate-every-two on (2i, 2i+1) after interleaving the halves', () => {
    const x = Float64Array.from({ length: 16 }, (_, i) => Math.cos(1.7 * i));
    const interleave = (v: ArrayLike<number>) => Float64Array.from({ length: 16 }, (_, j) => v[(j % 2) * 8 + (j >> 1)]);
    for (const p of [0, 1, 6, 40]) {
      const viaHalf = interleave(rotateHalf(x, p, ropeInvFreq(10000, 16)));
      const viaGptj = applyRotary(interleave(x), p, 16);
      expect(maxDiff([viaHalf], [viaGptj])).toBeLessThan(1e-14);
    }
  });

  it('GPT-NeoX with rotary_pct 1 and a shared pre-norm is GPT-J with q/k head dims interleaved and the fused qkv split', () => {
    const neox = tiny({ family: 'gpt_neox', seed: 10, layers: 2, overrides: { rotary_pct: 1.0, attention_bias: false, hidden_act: 'gelu_new' } });
    const D = 64, H = 4, dh = 16, I = 256;
    const t = (name: string) => neox.tensors.get(name)!;
    const weights = new Map<string, Float64Array>();
    // Head row r of q/k in GPT-J order is NeoX row (r % 2) * dh/2 + r / 2 of that head.
    const headRows = (fused: Float64Array, part: number, interleaved: boolean) => {
      const out = new Float64Array(D * D);
      for (let h = 0; h < H; h++) {
        for (let r = 0; r < dh; r++) {
          const src = interleaved ? (r % 2) * (dh / 2) + (r >> 1) : r;
          out.set(fused.subarray((h * 3 * dh + part * dh + src) * D, (h * 3 * dh + part * dh + src + 1) * D), (h * dh + r) * D);
        }
      }
      return out;
    };
    for (let l = 0; l < 2; l++) {
      const p = `gpt_neox.layers.${l}`;
      const b = blockWeightNames(l);
      const qkv = t(`${p}.attention.query_key_value.weight`);
      weights.set(b.ln1Weight, t(`${p}.input_layernorm.weight`)).set(b.ln1Bias, t(`${p}.input_layernorm.bias`));
      weights.set(b.qProj, headRows(qkv, 0, true)).set(b.kProj, headRows(qkv, 1, true)).set(b.vProj, headRows(qkv, 2, false));
      weights.set(b.outProj, t(`${p}.attention.dense.weight`));
      weights.set(b.fcIn, t(`${p}.mlp.dense_h_to_4h.weight`)).set(b.fcInBias, t(`${p}.mlp.dense_h_to_4h.bias`));
      weights.set(b.fcOut, t(`${p}.mlp.dense_4h_to_h.weight`)).set(b.fcOutBias, t(`${p}.mlp.dense_4h_to_h.bias`));
      // GPT-J's parallel block reads one norm for both branches.
      neox.tensors.set(`${p}.post_attention_layernorm.weight`, t(`${p}.input_layernorm.weight`));
      neox.tensors.set(`${p}.post_attention_layernorm.bias`, t(`${p}.input_layernorm.bias`));
    }
    weights.set('transformer.wte.weight', t('gpt_neox.embed_in.weight'));
    weights.set('transformer.ln_f.weight', t('gpt_neox.final_layer_norm.weight')).set('transformer.ln_f.bias', t('gpt_neox.final_layer_norm.bias'));
    weights.set('lm_head.weight', t('embed_out.weight')).set('lm_head.bias', new Float64Array(neox.config.vocab_size as number));
    const config: GptjConfig = { nLayers: 2, dModel: D, nHeads: H, dHead: dh, dMlp: I, nCtx: 128, rotaryDim: dh, dVocab: neox.config.vocab_size as number, layerNormEps: 1e-5, bosTokenId: 0 };
    const gptj = gptjForward({ config, weights, tokens });
    expect(maxDiff(allLayers(run(neox)), [...gptj.residPost.flat(), ...gptj.logits])).toBeLessThan(1e-11);
  });
});

describe('small pieces recomputed here', () => {
  it('erf matches tabulated values, so NeoX\'s exact gelu is right', () => {
    const table: [number, number][] = [[0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [-3, -0.9999779095030014], [4.5, 0.9999999998033839]];
    for (const [x, want] of table) expect(Math.abs(erf(x) - want)).toBeLessThan(1e-15);
  });

  it("Gemma 2's √d normaliser is rounded to the checkpoint dtype: 59.75 for bf16 hidden 3584, exactly 8 for hidden 64", () => {
    expect(roundToDtype(Math.sqrt(3584), 'bfloat16')).toBe(59.75);
    expect(roundToDtype(Math.sqrt(3584), 'float32')).toBe(Math.fround(Math.sqrt(3584)));
    const g = tiny({ family: 'gemma2', seed: 11, dtype: 'BF16' });
    expect(resolveFamily('gemma2', g.config).embedScale).toBe(8);
    expect(run(g).embeddings[1]).toEqual(g.tensors.get('model.embed_tokens.weight')!.slice(40 * 64, 41 * 64).map((v) => v * 8));
  });

  it('GPT-2 at position 0: h + c_proj(v) then + mlp(ln_2(·)), with Conv1D weights read as [in, out]', () => {
    const g = tiny({ family: 'gpt2', seed: 12, layers: 1 });
    const w = (name: string) => g.tensors.get(name)!;
    const D = 64;
    // Plain helpers, deliberately not the reference's.
    const xW = (x: number[], wt: Float64Array, out: number, bias: Float64Array) => bias.map((b, o) => x.reduce((s, xi, i) => s + xi * wt[i * out + o], b));
    const ln = (x: number[], gamma: Float64Array, beta: Float64Array) => {
      const mean = x.reduce((a, b) => a + b) / x.length;
      const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length + 1e-5);
      return x.map((v, i) => ((v - mean) / sd) * gamma[i] + beta[i]);
    };
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const h0 = Array.from({ length: D }, (_, i) => w('wte.weight')[7 * D + i] + w('wpe.weight')[i]);
    // A single token attends to itself only: the attention output is its v (the last third of c_attn).
    const v = Array.from(xW(ln(h0, w('h.0.ln_1.weight'), w('h.0.ln_1.bias')), w('h.0.attn.c_attn.weight'), 3 * D, w('h.0.attn.c_attn.bias'))).slice(2 * D);
    const mid = Array.from(xW(v, w('h.0.attn.c_proj.weight'), D, w('h.0.attn.c_proj.bias')), (a, i) => a + h0[i]);
    const hidden = Array.from(xW(ln(mid, w('h.0.ln_2.weight'), w('h.0.ln_2.bias')), w('h.0.mlp.c_fc.weight'), 4 * D, w('h.0.mlp.c_fc.bias')), gelu);
    const out = Array.from(xW(hidden, w('h.0.mlp.c_proj.weight'), D, w('h.0.mlp.c_proj.bias')), (m, i) => m + mid[i]);
    expect(maxDiff(run(g, [7]).residPost[0], [out])).toBeLessThan(1e-12);
  });

  it('Gemma 2 at position 0: (1 + w) norms before and after attention and MLP, √d-scaled embedding, GeGLU', () => {
    const g = tiny({ family: 'gemma2', seed: 13, layers: 1 });
    const w = (name: string) => g.tensors.get(name)!;
    const D = 64, I = 128, p = 'model.layers.0';
    const Wx = (wt: Float64Array, x: number[], out: number) => Array.from({ length: out }, (_, o) => x.reduce((s, xi, i) => s + wt[o * x.length + i] * xi, 0));
    const rms = (x: number[], gain: Float64Array) => {
      const r = Math.sqrt(x.reduce((a, b) => a + b * b, 0) / x.length + 1e-6);
      return x.map((v, i) => (v / r) * (1 + gain[i]));
    };
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    const h0 = Array.from(w('model.embed_tokens.weight').slice(9 * D, 10 * D), (v) => v * 8);
    const x = rms(h0, w(`${p}.input_layernorm.weight`));
    // One position: softmax over one score is 1 whatever the cap; each query head reads its kv head's v.
    const v = Wx(w(`${p}.self_attn.v_proj.weight`), x, 2 * 32);
    const z = [0, 1, 2, 3].flatMap((h) => v.slice((h >> 1) * 32, ((h >> 1) + 1) * 32));
    const mid = rms(Wx(w(`${p}.self_attn.o_proj.weight`), z, D), w(`${p}.post_attention_layernorm.weight`)).map((a, i) => a + h0[i]);
    const y = rms(mid, w(`${p}.pre_feedforward_layernorm.weight`));
    const up = Wx(w(`${p}.mlp.up_proj.weight`), y, I);
    const act = Wx(w(`${p}.mlp.gate_proj.weight`), y, I).map((gv, i) => gelu(gv) * up[i]);
    const out = rms(Wx(w(`${p}.mlp.down_proj.weight`), act, D), w(`${p}.post_feedforward_layernorm.weight`)).map((m, i) => m + mid[i]);
    expect(maxDiff(run(g, [9]).residPost[0], [out])).toBeLessThan(1e-12);
  });
});
