import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runStoredSweep } from '../src-main/api/sweep-service.ts';
import { openCheckpoint, readTensorAsFloat32 } from '../src-main/engine/checkpoint.ts';
import { Engine, type EngineStats } from '../src-main/engine/engine.ts';
import { hashStats } from '../src-main/engine/identity.ts';
import { prepareModel } from '../src-main/engine/model-build.ts';
import { readSafetensorsHeader } from '../src-main/engine/safetensors.ts';
import { planWeights } from '../src-main/engine/weight-plan.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { exportJson } from '../src-main/store/export.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { SweepSpec } from '../src-main/protocol/spec.ts';
import { LOGIT_LENS, LOGITSCOPE, TOKEN_IDENTITY } from '../src-main/protocol/techniques.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'identity-'));
const data = path.join(tmp, 'data.jsonl');
const cacheRoot = path.join(tmp, 'cache');
const small = { n_layer: 2, n_embd: 32, n_head: 4, rotary_dim: 4, vocab_size: 1000 };
let dirs = 0;
const freshDir = () => path.join(tmp, `ckpt-${++dirs}`);
let stores = 0;
const freshStore = () => ResultStore.open(path.join(tmp, `results-${++stores}.sqlite`));

/** Gives every file in `dir` an mtime `seconds` ago, as a download finished a while before it is opened. */
function age(dir: string, seconds = 3600): void {
  const then = new Date(Date.now() - seconds * 1000);
  for (const name of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, name), then, then);
}

function hashedSince(mark: typeof hashStats) {
  return { files: hashStats.files - mark.files, bytes: hashStats.bytes - mark.bytes };
}

function delta(after: EngineStats, before: EngineStats) {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof EngineStats]]));
}

const spec = (modelDir: string, limit: number): SweepSpec => ({
  modelDir,
  device: 'cpu',
  files: [data],
  protocol: resolveProtocol('logitscope', { limit }),
  techniques: [LOGIT_LENS, TOKEN_IDENTITY, LOGITSCOPE],
  layers: null,
  k: 5,
  strategy: 'fast',
});

beforeAll(() => {
  const words = 'river stone light garden window paper music winter table silver orange mountain'.split(' ');
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: Array.from({ length: 4 + (i % 7) }, (_, j) => words[(i * 5 + j * 3) % words.length]).join(' ') }));
  fs.writeFileSync(data, lines.join('\n'));
});

describe('a checkpoint edited in place', () => {
  test('a tensor in the middle of the file, rewritten with the same size and header, gives a new identity and fresh results', async () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', seed: 41 });
    const file = path.join(dir, 'model.safetensors');
    const store = freshStore();
    const before = await Engine.load({ modelDir: dir, cacheRoot });
    const first = await runStoredSweep(before, store, spec(dir, 6));
    await before.dispose();

    // A "fine-tune" of one MLP matrix that is neither the first nor the last tensor in the file.
    const { tensors } = readSafetensorsHeader(file);
    const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
    const edited = tensors.find((t) => t.name === 'transformer.h.1.mlp.fc_in.weight')!;
    expect(edited.offset).toBeGreaterThan(byOffset[0].offset);
    expect(edited.offset).toBeLessThan(byOffset[byOffset.length - 1].offset);
    const size = fs.statSync(file).size;
    const header = readSafetensorsHeader(file).header;
    const fd = fs.openSync(file, 'r+');
    const bytes = Buffer.alloc(edited.byteLength);
    fs.readSync(fd, bytes, 0, bytes.length, edited.offset);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    for (let i = 0; i < values.length; i++) values[i] *= -2;
    fs.writeSync(fd, bytes, 0, bytes.length, edited.offset);
    fs.closeSync(fd);
    expect(fs.statSync(file).size).toBe(size);
    expect(readSafetensorsHeader(file).header.equals(header)).toBe(true);

    const after = await Engine.load({ modelDir: dir, cacheRoot });
    try {
      expect(after.info.identity).not.toBe(before.info.identity);
      const second = await runStoredSweep(after, store, spec(dir, 6));
      const fresh = await runStoredSweep(after, freshStore(), spec(dir, 6));
      expect(second.outcome.results).toEqual(fresh.outcome.results);
      expect(second.outcome.results).not.toEqual(first.outcome.results);
    } finally {
      await after.dispose();
    }
  });

  test('an fp16 checkpoint run in fp32 is converted again, not served the old converted weights', async () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', dtype: 'F16', config: small, tokenizer: 'none', seed: 44 });
    const before = await prepareModel(openCheckpoint(dir), 'float32', cacheRoot);
    const file = path.join(dir, 'model.safetensors');
    const edited = readSafetensorsHeader(file).tensors.find((t) => t.name === 'transformer.h.0.mlp.fc_out.weight')!;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from(new Uint16Array(edited.byteLength / 2).fill(0x3c00).buffer), 0, edited.byteLength, edited.offset); // every value 1.0
    fs.closeSync(fd);

    const after = await prepareModel(openCheckpoint(dir), 'float32', cacheRoot);
    expect(after.converted).toBe(true);
    expect(after.cacheDir).not.toBe(before.cacheDir);
    const converted = (await planWeights(openCheckpoint(dir), 'float32', after.cacheDir)).place('transformer.h.0.mlp.fc_out.weight').ref;
    expect(new Set(readTensorAsFloat32(converted))).toEqual(new Set([1]));
  });
});

describe('the content-hash index in the cache root', () => {
  const indexFile = (root: string) => path.join(root, 'content-hashes.json');

  test('reopening an unchanged checkpoint hashes no file and leaves the index untouched', () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors-sharded', config: small, tokenizer: 'tokenizer.json' });
    age(dir);
    const root = path.join(tmp, 'cache-reopen');
    let mark = { ...hashStats };
    const first = openCheckpoint(dir, { cacheRoot: root });
    // config.json, tokenizer.json, the shard index and both shards (tokenizer_config.json and
    // special_tokens_map.json are not read by the app, so they do not decide a result).
    expect(hashedSince(mark).files).toBe(5);
    const written = fs.statSync(indexFile(root), { bigint: true });

    mark = { ...hashStats };
    const second = openCheckpoint(dir, { cacheRoot: root });
    expect(hashedSince(mark)).toEqual({ files: 0, bytes: 0 });
    expect(second.identity).toBe(first.identity);
    const now = fs.statSync(indexFile(root), { bigint: true });
    expect([now.ino, now.mtimeNs]).toEqual([written.ino, written.mtimeNs]);
    // The index only saves time: hashing everything again gives the same identity.
    expect(openCheckpoint(dir).identity).toBe(first.identity);
  });

  test('touching a file without changing its bytes hashes that file again and keeps the identity', () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', config: small, tokenizer: 'none' });
    age(dir);
    const root = path.join(tmp, 'cache-touch');
    const first = openCheckpoint(dir, { cacheRoot: root });
    const weights = path.join(dir, 'model.safetensors');
    const earlier = new Date(Date.now() - 7200 * 1000);
    fs.utimesSync(weights, earlier, earlier);

    let mark = { ...hashStats };
    const touched = openCheckpoint(dir, { cacheRoot: root });
    expect(hashedSince(mark)).toEqual({ files: 1, bytes: fs.statSync(weights).size });
    expect(touched.identity).toBe(first.identity);
    mark = { ...hashStats };
    openCheckpoint(dir, { cacheRoot: root });
    expect(hashedSince(mark).files).toBe(0);
  });

  test('a file written moments before it was hashed is hashed again on the next open, in case it changed within the same mtime tick', () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', config: small, tokenizer: 'none' });
    const root = path.join(tmp, 'cache-racy');
    openCheckpoint(dir, { cacheRoot: root });
    const mark = { ...hashStats };
    openCheckpoint(dir, { cacheRoot: root });
    expect(hashedSince(mark).files).toBe(2);
  });

  test('an unreadable index is ignored and replaced', () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', config: small, tokenizer: 'none' });
    age(dir);
    const root = path.join(tmp, 'cache-garbage');
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(indexFile(root), '{"version": 1, "files": ');
    expect(openCheckpoint(dir, { cacheRoot: root }).identity).toBe(openCheckpoint(dir).identity);
    const mark = { ...hashStats };
    openCheckpoint(dir, { cacheRoot: root });
    expect(hashedSince(mark).files).toBe(0);
  });
});

describe('a sweep with recompute', () => {
  let engine: Engine;
  beforeAll(async () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', seed: 43 });
    engine = await Engine.load({ modelDir: dir, cacheRoot });
  });
  afterAll(async () => engine?.dispose());

  test('computes every row again and stores it as its own, leaving the rows earlier runs read as they were', async () => {
    const store = freshStore();
    const mark = { ...engine.stats };
    const first = await runStoredSweep(engine, store, spec(engine.info.modelDir, 6));
    const computedOnce = delta(engine.stats, mark);
    expect(computedOnce.unembedRows).toBeGreaterThan(0);
    const firstExport = JSON.stringify(exportJson(store, first.runId));

    const before = { ...engine.stats };
    const redone = await runStoredSweep(engine, store, spec(engine.info.modelDir, 6), { recompute: true });
    expect(delta(engine.stats, before)).toEqual(computedOnce);
    expect(redone.outcome.results).toEqual(first.outcome.results);
    expect(store.getRun(redone.runId)).toMatchObject({ status: 'completed', examplesDone: 6, ownsRows: true });
    expect(JSON.stringify(exportJson(store, first.runId))).toBe(firstExport);

    // A plain sweep is still served from the cache, and reads the oldest rows: the first run's.
    const served = { ...engine.stats };
    const again = await runStoredSweep(engine, store, spec(engine.info.modelDir, 6));
    expect(delta(engine.stats, served).unembedRows).toBe(0);
    expect(again.outcome.results).toEqual(first.outcome.results);
  });
});

describe('cached graphs and converted weights', () => {
  test('a built graph or the converted weights changed in place (same size) is refused with cache_corrupt, named, and rebuilt', async () => {
    const dir = freshDir();
    writeTinyGptj({ dir, format: 'safetensors', seed: 77, dtype: 'F16', config: small });
    age(dir);
    const root = path.join(tmp, 'cache-check');
    const ckpt = openCheckpoint(dir, { cacheRoot: root });
    const built = await prepareModel(ckpt, 'float32', root);
    expect(built.converted).toBe(true);
    const graph = path.join(built.cacheDir, 'blocks.onnx');
    const weights = path.join(built.cacheDir, 'weights-f32.bin');
    const genuine = { graph: fs.readFileSync(graph), weights: fs.readFileSync(weights) };
    expect((await prepareModel(ckpt, 'float32', root)).fromCache).toBe(true);

    const messages: string[] = [];
    const original = console.error;
    console.error = (line: string) => messages.push(String(line));
    try {
      // A few values scaled by 1e6 in the converted weights, and the graph's tail zeroed: same sizes.
      const w = new Float32Array(new Uint8Array(genuine.weights).buffer);
      for (let i = 0; i < 8; i++) w[i * 97] *= 1e6;
      fs.writeFileSync(weights, w);
      const g = Buffer.from(genuine.graph);
      g.fill(0, g.length - 64);
      fs.writeFileSync(graph, g);
      const rebuilt = await prepareModel(ckpt, 'float32', root);
      expect(rebuilt.fromCache).toBe(false);
    } finally {
      console.error = original;
    }
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(new RegExp(`^\\[cache_corrupt\\] ${weights}: the converted weights: the file's content changed since it was written .*refused and will be rebuilt`));
    expect(messages[1]).toMatch(new RegExp(`^\\[cache_corrupt\\] ${graph}: a built graph: the file's content changed since it was written .*refused and will be rebuilt`));
    expect(fs.readFileSync(weights).equals(genuine.weights)).toBe(true);
    expect(fs.readFileSync(graph).equals(genuine.graph)).toBe(true);
  }, 60_000);
});
