/**
 * writeTinyFamily writes what it promises: each family's real config fields and key names, weights
 * on disk equal to the float64 values it returns, and a tokenizer @huggingface/tokenizers loads whose
 * ids fit the config's vocabulary. (With LOGITSCOPE_HF_PYTHON set, reference-families-hf.test.ts
 * also has transformers load them.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { decodeInto } from '../src-main/engine/dtype.ts';
import type { WeightDtype } from '../src-main/engine/tensor-ref.ts';
import { FAMILIES, writeTinyFamily, type Family } from './fixtures/hf-families.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-families-'));

function readSafetensors(file: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const buf = fs.readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: buf.subarray(8 + headerLen + t.data_offsets[0], 8 + headerLen + t.data_offsets[1]) });
  }
  return out;
}

/** A few keys per family exactly as the hub's checkpoints spell them, and keys a tied or bias-free model must not have. */
const KEYS: Record<Family, { has: string[]; lacks: string[] }> = {
  llama: { has: ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.2.mlp.gate_proj.weight', 'model.norm.weight', 'lm_head.weight'], lacks: ['model.layers.0.self_attn.q_proj.bias'] },
  mistral: { has: ['model.layers.1.self_attn.k_proj.weight', 'model.layers.0.post_attention_layernorm.weight', 'lm_head.weight'], lacks: ['model.layers.0.self_attn.o_proj.bias'] },
  qwen2: { has: ['model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.k_proj.bias', 'model.layers.0.self_attn.v_proj.bias'], lacks: ['model.layers.0.self_attn.o_proj.bias', 'lm_head.weight'] },
  gemma2: { has: ['model.layers.3.pre_feedforward_layernorm.weight', 'model.layers.3.post_feedforward_layernorm.weight', 'model.layers.0.post_attention_layernorm.weight'], lacks: ['lm_head.weight'] },
  gpt_neox: { has: ['gpt_neox.embed_in.weight', 'gpt_neox.layers.0.attention.query_key_value.weight', 'gpt_neox.layers.0.attention.dense.bias', 'gpt_neox.final_layer_norm.bias', 'embed_out.weight'], lacks: [] },
  gpt2: { has: ['wte.weight', 'wpe.weight', 'h.0.attn.c_attn.weight', 'h.2.mlp.c_proj.bias', 'ln_f.weight'], lacks: ['transformer.wte.weight', 'lm_head.weight'] },
};

describe.each(FAMILIES)('writeTinyFamily(%s)', (family) => {
  const m = writeTinyFamily({ dir: path.join(tmp, family), family, seed: 2, dtype: family === 'gemma2' ? 'BF16' : family === 'qwen2' ? 'F16' : 'F32' });
  const onDisk = readSafetensors(path.join(m.dir, 'model.safetensors'));
  const config = JSON.parse(fs.readFileSync(path.join(m.dir, 'config.json'), 'utf8'));

  it("writes config.json with the family's model_type and architecture, as returned", () => {
    expect(config).toEqual(m.config);
    expect(config.model_type).toBe(family);
    expect(config.architectures[0]).toMatch(/ForCausalLM$|LMHeadModel$/);
  });

  it('stores every weight under its hub key name, with the returned shape and values', () => {
    for (const key of KEYS[family].has) expect(onDisk.has(key), key).toBe(true);
    for (const key of KEYS[family].lacks) expect(onDisk.has(key), key).toBe(false);
    for (const [name, values] of m.tensors) {
      const t = onDisk.get(name)!;
      expect(t.shape, name).toEqual(m.shapes.get(name));
      const decoded = new Float64Array(values.length);
      decodeInto(t.dtype as WeightDtype, t.bytes, decoded);
      expect(decoded.findIndex((v, i) => v !== values[i]), `${name}: first element that differs`).toBe(-1);
    }
    // Anything else in the file is a buffer the hub's files also carry (masks, inv_freq), never a weight.
    for (const name of onDisk.keys()) if (!m.tensors.has(name)) expect(name).toMatch(/\.(bias|masked_bias|inv_freq)$/);
  });

  it("writes a tokenizer that loads, names exactly the config's vocabulary, and round-trips text", () => {
    const read = (name: string) => JSON.parse(fs.readFileSync(path.join(m.dir, name), 'utf8'));
    const json = read('tokenizer.json');
    const ids = new Set<number>([...Object.values(json.model.vocab as Record<string, number>), ...json.added_tokens.map((t: { id: number }) => t.id)]);
    expect(ids.size).toBe(config.vocab_size);
    expect(Math.max(...ids)).toBe(config.vocab_size - 1);
    const tokenizer = new Tokenizer(json, read('tokenizer_config.json'));
    const text = 'The cat sat on the mat, naïvely. 42';
    const encoded = tokenizer.encode(text).ids;
    const addsBos = family === 'llama' || family === 'mistral' || family === 'gemma2';
    expect(encoded[0] === config.bos_token_id).toBe(addsBos);
    expect(tokenizer.decode(encoded, { skip_special_tokens: true })).toBe(text);
    expect(encoded.length).toBeLessThan(new TextEncoder().encode(text).length); // merges apply
  });
});

describe.each(FAMILIES)('writeTinyFamily(%s) with a vocabSize (the benches)', (family) => {
  it('writes a tokenizer of exactly that many ids, the config follows, and more merges make longer words one token', () => {
    const big = writeTinyFamily({ dir: path.join(tmp, `${family}-v1000`), family, layers: 1, vocabSize: 1000 });
    const json = JSON.parse(fs.readFileSync(path.join(big.dir, 'tokenizer.json'), 'utf8'));
    const ids = new Set<number>([...Object.values(json.model.vocab as Record<string, number>), ...json.added_tokens.map((t: { id: number }) => t.id)]);
    expect(ids.size).toBe(1000);
    expect(Math.max(...ids)).toBe(999);
    expect(big.config.vocab_size).toBe(1000);
    expect(big.shapes.get(family === 'gpt2' ? 'wte.weight' : family === 'gpt_neox' ? 'gpt_neox.embed_in.weight' : 'model.embed_tokens.weight')![0]).toBe(1000);
    const small = JSON.parse(fs.readFileSync(path.join(tmp, family, 'tokenizer.json'), 'utf8'));
    const count = (t: unknown) => new Tokenizer(t as object, {}).encode(' the people of the world').ids.length;
    expect(count(json)).toBeLessThan(count(small));
  });
});

describe('writeTinyFamily overrides', () => {
  it('shapes follow the config: Mistral head_dim 32 gives q_proj [4·32, 64]; dropping it gives 64/4', () => {
    const wide = writeTinyFamily({ dir: path.join(tmp, 'mistral-wide'), family: 'mistral' });
    const plain = writeTinyFamily({ dir: path.join(tmp, 'mistral-plain'), family: 'mistral', overrides: { head_dim: undefined } });
    expect(wide.shapes.get('model.layers.0.self_attn.q_proj.weight')).toEqual([128, 64]);
    expect(wide.shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([64, 64]);
    expect('head_dim' in plain.config).toBe(false);
    expect(plain.shapes.get('model.layers.0.self_attn.q_proj.weight')).toEqual([64, 64]);
  });

  it('Llama with attention_bias and mlp_bias has all seven biases; tied drops lm_head', () => {
    const m = writeTinyFamily({ dir: path.join(tmp, 'llama-bias'), family: 'llama', layers: 2, overrides: { attention_bias: true, mlp_bias: true, tie_word_embeddings: true } });
    const biases = [...m.tensors.keys()].filter((k) => k.startsWith('model.layers.0.') && k.endsWith('.bias'));
    expect(biases.length).toBe(7);
    expect(m.tensors.has('lm_head.weight')).toBe(false);
  });
});
