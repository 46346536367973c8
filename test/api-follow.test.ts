/**
 * `runs.follow` (real Lab, engine and SQLite file, tiny random checkpoint): a stored example's
 * token, followed in every cell, against `extract` following it on the same tokens, the float64
 * reference, and the run's own stored numbers (top-k probabilities, surprisal, rank, and a
 * tracked record token's probability and rank); and every refusal, each with its code, before
 * any work.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView, FollowView, RunView } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { parseGptjConfig, type GptjConfig } from '../src-main/engine/config.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { logSoftmax, referenceForward, referenceLogitLens } from './reference/gptj-f64.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'api-follow-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const dbPath = path.join(tmp, 'results.sqlite');
const K = 3;
const ORDINAL = 2;
/** fp32 against the float64 reference, as the engine's own numerics tests. */
const TOL = 1e-4;
const TOPICS = ['the sea', 'a city', 'the old forest', 'a river', 'the mountains'];
const LINES = Array.from({ length: 90 }, (_, i) => `Line ${i} is about ${TOPICS[i % TOPICS.length]} and more.`);

describe('runs.follow: a token followed in every cell of a stored example', () => {
  let lab: Lab;
  let config: GptjConfig;
  let weights: ReadonlyMap<string, Float64Array>;
  let runId: string;
  let run: RunView;
  let example: ExampleView;

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: model, format: 'safetensors', seed: 47, config: { n_layer: 3, n_embd: 32 } });
    config = parseGptjConfig(ckpt.config, 'config.json');
    weights = ckpt.weights;
    fs.writeFileSync(data, LINES.map((text) => JSON.stringify({ text })).join('\n'));
    lab = await Lab.open({ dbPath, cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    // The tuned lens trains on the records after the pool (0..9), evaluated on 6 of them.
    ({ runId } = await lab.call('sweep.start', {
      files: [data],
      preset: 'logitscope',
      overrides: { poolEnd: 10, limit: 6 },
      techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'tuned_lens' }],
      layers: null,
      k: K,
    }));
    await lab.settled(runId);
    run = await lab.call('runs.get', { runId });
    expect(run.status).toBe('completed');
    example = await lab.call('runs.example', { runId, ordinal: ORDINAL });
  });
  afterAll(async () => lab?.close());

  const follow = (token: number) => lab.call('runs.follow', { runId, ordinal: ORDINAL, token });
  const followedAt = (f: FollowView, technique: string, layer: number) => f.cells.find((c) => c.technique === technique && c.layer === layer)!;

  test('every cell of the run is answered: its techniques × layers', async () => {
    const f = await follow(example.reference.id);
    expect(f.cells.map((c) => `${c.technique}@${c.layer}`).sort()).toEqual(example.cells.map((c) => `${c.technique}@${c.layer}`).sort());
    expect(f).toMatchObject({ ordinal: ORDINAL, token: { id: example.reference.id, text: example.reference.text } });
  });

  test('the reference followed has p = exp(-surprisal) and rank = the stored rank + 1 in every cell', async () => {
    const f = await follow(example.reference.id);
    for (const c of example.cells) {
      const got = followedAt(f, c.technique, c.layer);
      expect(Math.abs(got.prob - Math.exp(-c.surprisal)) / Math.exp(-c.surprisal), `${c.technique}@${c.layer}`).toBeLessThan(1e-5);
      expect(got.rank, `${c.technique}@${c.layer}`).toBe(c.rank! + 1);
    }
  });

  test('a token in some cells\' stored top-k and outside others has its stored probability where listed, and a smaller one, ranked past k, where not', async () => {
    const token = example.cells.find((c) => c.technique === 'logit_lens' && c.layer === 0)!.topK[0].id;
    const f = await follow(token);
    const outside = example.cells.filter((c) => !c.topK.some((t) => t.id === token));
    expect(outside.length).toBeGreaterThan(0);
    for (const c of example.cells) {
      const got = followedAt(f, c.technique, c.layer);
      const listed = c.topK.findIndex((t) => t.id === token);
      if (listed >= 0) {
        expect(Math.abs(got.prob - c.topK[listed].prob)).toBeLessThan(1e-6);
        expect(got.rank).toBe(listed + 1);
      } else {
        expect(got.prob).toBeLessThanOrEqual(c.topK[K - 1].prob + 1e-7);
        expect(got.rank).toBeGreaterThan(K);
      }
    }
  });

  test('every cell equals extract following the same token on the same tokens (the tuned lens the run read through included)', async () => {
    const token = example.cells.find((c) => c.technique === 'logitscope' && c.layer === config.nLayers - 1)!.topK[1].id;
    const f = await follow(token);
    const view = await lab.call('extract', {
      text: LINES[example.recordIndex],
      bos: run.protocol.bos,
      position: example.position,
      techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'tuned_lens' }],
      layers: run.layers,
      k: K,
      follow: token,
    });
    const upTo = (ts: { id: number }[]) => ts.slice(0, example.position + 1).map((t) => t.id);
    expect(upTo(view.tokens)).toEqual(upTo(example.tokens));
    expect(view.cells).toHaveLength(f.cells.length);
    for (const c of view.cells) {
      const got = followedAt(f, c.technique, c.layer);
      expect(Math.abs(got.prob - c.followProb!), `${c.technique}@${c.layer}`).toBeLessThan(1e-6);
      expect(got.rank, `${c.technique}@${c.layer}`).toBe(c.followRank);
    }
  });

  test('the logit lens cells equal the float64 reference: probability within 1e-4, rank among the ids within 1e-4 of its logit', async () => {
    const token = example.cells.find((c) => c.technique === 'logit_lens' && c.layer === config.nLayers - 1)!.topK[2].id;
    const f = await follow(token);
    const tokens = example.tokens.slice(0, example.position + 1).map((t) => t.id);
    const src = referenceForward({ config, weights, tokens });
    for (const layer of run.layers) {
      const vector = layer < 0 ? src.embeddings[example.position] : src.residPost[layer][example.position];
      const want = logSoftmax(referenceLogitLens(config, weights, vector));
      const got = followedAt(f, 'logit_lens', layer);
      expect(Math.abs(got.prob - Math.exp(want[token]))).toBeLessThan(TOL);
      const above = (margin: number) => want.filter((v) => v > want[token] + margin).length;
      expect(got.rank).toBeGreaterThanOrEqual(1 + above(TOL));
      expect(got.rank).toBeLessThanOrEqual(1 + above(-TOL));
    }
  });

  test("following a run's stored record token gives the numbers the sweep stored for it (track 'record'), in every cell of every example", async () => {
    const TRACKED = 4000;
    const tracked = path.join(tmp, 'tracked.jsonl');
    fs.writeFileSync(tracked, LINES.slice(0, 4).map((text) => JSON.stringify({ text, track: TRACKED })).join('\n'));
    const sweep = await lab.call('sweep.start', { files: [tracked], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: K, track: 'record' });
    await lab.settled(sweep.runId);
    for (let ordinal = 0; ordinal < 4; ordinal++) {
      const stored = await lab.call('runs.example', { runId: sweep.runId, ordinal });
      expect(stored.follow?.id).toBe(TRACKED);
      const f = await lab.call('runs.follow', { runId: sweep.runId, ordinal, token: TRACKED });
      for (const c of stored.cells) {
        const got = followedAt(f, c.technique, c.layer);
        const where = `example ${ordinal}, ${c.technique}@${c.layer}`;
        // The sweep computed its examples batched together: float32 sums may round apart, no more than this.
        expect(Math.abs(Math.log(got.prob) - Math.log(c.followProb!)), where).toBeLessThan(1e-4);
        expect(got.rank, where).toBe(c.followRank);
      }
    }
  });

  test('a token id past the vocabulary, an example not computed and an unknown run are refused, each with its code and field', async () => {
    expect(await lab.dispatch('runs.follow', { runId, ordinal: ORDINAL, token: config.dVocab })).toMatchObject({ ok: false, error: { code: 'token_out_of_range', path: 'token' } });
    expect(await lab.dispatch('runs.follow', { runId, ordinal: 99, token: 1 })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'ordinal' } });
    expect(await lab.dispatch('runs.follow', { runId: 'ffffffff', ordinal: 0, token: 1 })).toMatchObject({ ok: false, error: { code: 'run_not_found', path: 'runId' } });
  });

  test('with no model loaded the refusal names the run\'s model; with another model loaded it is model_mismatch', async () => {
    const other = await Lab.open({ dbPath, cacheRoot: path.join(tmp, 'graphs') });
    try {
      const none = await other.dispatch('runs.follow', { runId, ordinal: ORDINAL, token: 1 });
      expect(none).toMatchObject({ ok: false, error: { code: 'model_not_loaded', path: 'model' } });
      expect(JSON.stringify(none)).toContain(run.modelPath);
      const otherModel = path.join(tmp, 'other-model');
      writeTinyGptj({ dir: otherModel, format: 'safetensors', seed: 48, config: { n_layer: 3, n_embd: 32 } });
      await other.call('model.load', { dir: otherModel });
      expect(await other.dispatch('runs.follow', { runId, ordinal: ORDINAL, token: 1 })).toMatchObject({ ok: false, error: { code: 'model_mismatch', path: 'runId' } });
    } finally {
      await other.close();
    }
  });
});
