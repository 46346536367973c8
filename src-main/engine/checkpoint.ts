import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from '../errors.ts';
import { expectedWeightShapes, type ModelConfig, readModelConfig } from './config.ts';
import { descriptionOf } from './families/index.ts';
import { decodeInto } from './dtype.ts';
import { contentIdentity, type IdentityFile } from './identity.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import { DTYPE_BYTES, type TensorRef, type WeightDtype } from './tensor-ref.ts';
import { readTorchBin } from './torch-bin.ts';

export type CheckpointFormat = 'safetensors' | 'safetensors-sharded' | 'bin' | 'bin-sharded';

/** A validated checkpoint directory: every weight its family needs is present, shaped as config.json says, and inside its file. */
export interface Checkpoint {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly format: CheckpointFormat;
  /** The dtype of the weight matrices (the most common one by elements if they are mixed). */
  readonly dtype: WeightDtype;
  /** Every dtype among the tensors, sorted; more than one when a checkpoint mixes them. */
  readonly dtypes: readonly WeightDtype[];
  /** Weights by Hugging Face name; non-weight buffers (attn.bias, attn.masked_bias) are not here. */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  /** Weight files, resolved through symlinks (Hugging Face cache snapshots link into blobs/). */
  readonly files: string[];
  /** A hash of every byte of config.json, the tokenizer files and the weight files (identity.ts). */
  readonly identity: string;
}

/** Looked for in this order: safetensors first, as it is the faster and safer read. */
const LAYOUTS: { format: CheckpointFormat; name: string; sharded: boolean }[] = [
  { format: 'safetensors', name: 'model.safetensors', sharded: false },
  { format: 'safetensors-sharded', name: 'model.safetensors.index.json', sharded: true },
  { format: 'bin', name: 'pytorch_model.bin', sharded: false },
  { format: 'bin-sharded', name: 'pytorch_model.bin.index.json', sharded: true },
];

/** Files besides the weights that decide a result: the ones loadTokenizer reads, as they turn text into the tokens that are run. */
const IDENTITY_EXTRAS = ['tokenizer.json', 'vocab.json', 'merges.txt', 'added_tokens.json'];
const MAX_LISTED = 5;

/**
 * Opens and validates a checkpoint. With `cacheRoot`, file hashes are remembered there so reopening
 * an unchanged checkpoint reads only headers; without it every byte is hashed on every open.
 */
export function openCheckpoint(dir: string, opts: { cacheRoot?: string } = {}): Checkpoint {
  dir = path.resolve(dir);
  const parsed = readModelConfig(dir);
  const layout = LAYOUTS.find((l) => fs.existsSync(path.join(dir, l.name)));
  if (!layout) {
    const broken = LAYOUTS.find((l) => isBrokenLink(path.join(dir, l.name)));
    throw new LogitscopeError(
      'weights_missing',
      broken
        ? `${broken.name} is a link to a file that does not exist (an unfinished download?)`
        : `no weights found (looked for ${LAYOUTS.map((l) => l.name).join(', ')})`,
      broken ? path.join(dir, broken.name) : dir,
    );
  }
  const names = layout.sharded ? readShardNames(path.join(dir, layout.name)) : [layout.name];
  const read = layout.format.startsWith('safetensors') ? readSafetensorsHeader : readTorchBin;

  const tensors = new Map<string, TensorRef>();
  const files: string[] = [];
  for (const name of names) {
    const linked = path.join(dir, name);
    if (!fs.existsSync(linked)) {
      throw new LogitscopeError('weights_missing', `shard ${name} is listed in ${layout.name} but is missing`, linked);
    }
    const file = fs.realpathSync(linked);
    const index = read(file);
    for (const t of index.tensors) {
      const seen = tensors.get(t.name);
      if (seen) throw new LogitscopeError('weights_corrupt', `tensor "${t.name}" is in both ${seen.file} and ${file}`, file);
      tensors.set(t.name, t);
    }
    files.push(file);
  }
  const config = withCheckpointKeys(parsed, tensors);
  checkExpectedWeights(config, tensors, names.length === 1 ? files[0] : dir);
  // Hashed only once the headers are known to be sound, so a broken checkpoint fails fast.
  const extras = ['config.json', ...IDENTITY_EXTRAS, ...(layout.sharded ? [layout.name] : [])].filter((n) => fs.existsSync(path.join(dir, n)));
  const identityFiles: IdentityFile[] = [
    ...extras.map((name) => ({ name, file: fs.realpathSync(path.join(dir, name)) })),
    ...names.map((name, i) => ({ name, file: files[i] })),
  ];

  return Object.freeze({
    dir,
    config,
    format: layout.format,
    ...dtypesOf(config, tensors),
    tensors,
    files,
    identity: contentIdentity(identityFiles, { cacheRoot: opts.cacheRoot }),
  });
}

/**
 * The config with the key names this checkpoint uses, where its family is published under more
 * than one: the prefix (GPT-2: "transformer.h.0…" from GPT2LMHeadModel, "h.0…" in the canonical
 * gpt2 file) and the untied head (NeoX: embed_out on the hub, lm_head as transformers 5 saves it).
 * Where none is present the usual names stay, and the missing weights are reported by them.
 */
function withCheckpointKeys(config: ModelConfig, tensors: ReadonlyMap<string, TensorRef>): ModelConfig {
  const d = descriptionOf(config);
  const weightPrefix = d.weightPrefixes.find((prefix) => tensors.has(d.top({ ...config, weightPrefix: prefix }).wte.weight)) ?? config.weightPrefix;
  const headKey = d.headKeys.find((key) => tensors.has(`${key}.weight`)) ?? config.headKey;
  if (weightPrefix === config.weightPrefix && headKey === config.headKey) return config;
  return Object.freeze({ ...config, weightPrefix, headKey });
}

function isBrokenLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Shard file names from a Hugging Face index (`{"metadata": …, "weight_map": {tensor: file}}`), sorted. */
function readShardNames(indexFile: string): string[] {
  const corrupt = (msg: string) => new LogitscopeError('weights_corrupt', msg, indexFile);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw corrupt(`not valid JSON (${(e as Error).message})`);
  }
  const map = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw corrupt('no "weight_map" object');
  const names = new Set<string>();
  for (const v of Object.values(map)) {
    // A shard name with a directory in it could point anywhere on disk.
    if (typeof v !== 'string' || v !== path.basename(v) || v === '..' || v === '.') throw corrupt(`invalid shard file name ${JSON.stringify(v)}`);
    names.add(v);
  }
  if (names.size === 0) throw corrupt('"weight_map" names no shard files');
  return [...names].sort();
}

function checkExpectedWeights(config: ModelConfig, tensors: ReadonlyMap<string, TensorRef>, where: string): void {
  const missing: string[] = [];
  const wrong: string[] = [];
  let wrongFile = where;
  for (const [name, shape] of expectedWeightShapes(config)) {
    const t = tensors.get(name);
    if (!t) {
      missing.push(name);
    } else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      if (wrong.length === 0) wrongFile = t.file;
      wrong.push(`"${name}" in ${t.file} is [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  }
  if (missing.length > 0) {
    throw new LogitscopeError('weights_missing', `${missing.length} weight(s) that config.json implies are missing: ${listSome(missing.map((n) => `"${n}"`))}`, where);
  }
  if (wrong.length > 0) {
    throw new LogitscopeError('weights_shape_mismatch', `${wrong.length} weight(s) disagree with config.json: ${listSome(wrong)}`, wrongFile);
  }
}

function listSome(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join('; ');
  return items.length > MAX_LISTED ? `${shown}; and ${items.length - MAX_LISTED} more` : shown;
}

function dtypesOf(config: ModelConfig, tensors: ReadonlyMap<string, TensorRef>) {
  const elementsByDtype = new Map<WeightDtype, number>();
  for (const [name, shape] of expectedWeightShapes(config)) {
    if (shape.length !== 2) continue;
    const d = tensors.get(name)!.dtype;
    elementsByDtype.set(d, (elementsByDtype.get(d) ?? 0) + shape[0] * shape[1]);
  }
  const dtype = [...elementsByDtype].sort((a, b) => b[1] - a[1])[0][0];
  const dtypes = [...new Set([...tensors.values()].map((t) => t.dtype))].sort();
  return { dtype, dtypes };
}

/** Reads exactly the tensor's byte range into `dst`. */
function readTensorBytes(ref: TensorRef, dst: Uint8Array): void {
  if (dst.length !== ref.byteLength) {
    throw new LogitscopeError('weights_corrupt', `tensor "${ref.name}" [${ref.shape.join(', ')}] ${ref.dtype} does not span ${ref.byteLength} bytes`, ref.file);
  }
  const fd = fs.openSync(ref.file, 'r');
  try {
    let done = 0;
    while (done < dst.length) {
      // fs.readSync refuses single reads above 2 GiB.
      const n = fs.readSync(fd, dst, done, Math.min(dst.length - done, 1 << 30), ref.offset + done);
      if (n === 0) throw new LogitscopeError('weights_truncated', `tensor "${ref.name}" runs past the end of the file (was it changed after opening?)`, ref.file);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function elementCount(ref: TensorRef): number {
  return ref.shape.reduce((a, b) => a * b, 1);
}

/** One tensor's values, decoded from its on-disk dtype; reads only that tensor's bytes. */
export function readTensorAsFloat32(ref: TensorRef): Float32Array {
  const out = new Float32Array(elementCount(ref));
  if (ref.dtype === 'F32') {
    readTensorBytes(ref, new Uint8Array(out.buffer));
    return out;
  }
  const raw = new Uint8Array(out.length * DTYPE_BYTES[ref.dtype]);
  readTensorBytes(ref, raw);
  decodeInto(ref.dtype, raw, out);
  return out;
}

/** As readTensorAsFloat32, widened to float64 (exact: every F32/F16/BF16 value is a double). */
export function readTensorAsFloat64(ref: TensorRef): Float64Array {
  const raw = new Uint8Array(elementCount(ref) * DTYPE_BYTES[ref.dtype]);
  readTensorBytes(ref, raw);
  const out = new Float64Array(elementCount(ref));
  decodeInto(ref.dtype, raw, out);
  return out;
}
