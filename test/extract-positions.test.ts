/**
 * The logit-lens picture's numbers: `extract` over every position of a prompt (one example per
 * position, the sweeps' fast path) against single-position extractions and the float64 reference;
 * padding ids in exports; and the parity check on extractions and stored runs, including runs whose
 * stored rows were made wrong on purpose.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtractView, TechniqueChoice } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { parseGptjConfig, type GptjConfig } from '../src-main/engine/config.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { logSoftmax, referenceForward, referenceLogitLens } from './reference/gptj-f64.ts';
import { parseCsv } from './fixtures/csv.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'extract-positions-'));
const model = path.join(tmp, 'model');
const dbPath = path.join(tmp, 'results.sqlite');
/** A repeated word, so the same token sits at two positions (two separate columns). */
const PROMPT = 'The cat sat on the mat. The cat';
const K = 20;
/** fp32 against the float64 reference, as the engine's own numerics tests. */
const TOL = 1e-4;
const TECHNIQUES: TechniqueChoice[] = [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }, { id: 'custom', prompt: 'x->x;?->', targetLayer: { kind: 'fixed', layer: 1 } }];

interface RecordLayer { technique: string; layer: number; top1: number; surprisal: number; surprisal_paper: number; top_k: { ids: number[]; probs: number[] }; padding_ids: number[]; kl: number; rank: number; entropy: number }
interface RecordExample { tokens: number[]; position: number; reference_top1: number; layers: RecordLayer[] }

describe('extract over many positions (real engine, tiny random checkpoint)', () => {
  let lab: Lab;
  let config: GptjConfig;
  let weights: ReadonlyMap<string, Float64Array>;
  let all: ExtractView;

  beforeAll(async () => {
    const ckpt = writeTinyGptj({ dir: model, format: 'safetensors', seed: 17 });
    config = parseGptjConfig(ckpt.config, 'config.json');
    weights = ckpt.weights;
    lab = await Lab.open({ dbPath, cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    all = await lab.call('extract', { text: PROMPT, positions: 'all', k: K, techniques: TECHNIQUES });
  });
  afterAll(async () => lab?.close());

  test('positions all gives one column per token, repeated tokens apart, and the export record one example per position', () => {
    const n = all.tokens.length;
    expect(all.columns!.map((c) => c.position)).toEqual(Array.from({ length: n }, (_, i) => i));
    const ids = all.tokens.map((t) => t.id);
    expect(new Set(ids).size).toBeLessThan(ids.length); // " cat" (and "The") come twice
    const record = all.record as { examples: RecordExample[] };
    expect(record.examples.map((e) => e.position)).toEqual(all.columns!.map((c) => c.position));
    for (const e of record.examples) expect(e.layers).toHaveLength(4 * config.nLayers);
    // The top-level fields are the last position's, as a single-position reply would have them.
    expect(all.position).toBe(n - 1);
    expect(all.cells).toEqual(all.columns!.at(-1)!.cells);
  });

  test('a followed token has its exact probability and rank in every cell, outside the top-k too, equal to float64 within 1e-4', async () => {
    const record = all.record as { examples: RecordExample[]; techniques: Record<string, { prompt_tokens?: number[] }> };
    const tokens = record.examples[0].tokens;
    const src = referenceForward({ config, weights, tokens });
    const last = tokens.length - 1;
    // A token far down the logit lens's list at the last position: outside every top-k there.
    const lensLogits = referenceLogitLens(config, weights, src.residPost[0][last]);
    const follow = Array.from(lensLogits.keys()).sort((a, b) => lensLogits[a] - lensLogits[b])[config.dVocab >> 1];
    const view = await lab.call('extract', { text: PROMPT, k: K, techniques: [{ id: 'logit_lens' }], follow });
    expect(view.follow?.id).toBe(follow);
    let outside = 0;
    for (const c of view.cells) {
      const logits = referenceLogitLens(config, weights, c.layer < 0 ? src.embeddings[last] : src.residPost[c.layer][last]);
      const lp = logSoftmax(logits);
      expect(Math.abs(c.followProb! - Math.exp(lp[follow]))).toBeLessThan(TOL);
      // Rank 1 = top-1: one more than the ids with a strictly greater logit (up to ties within fp32 rounding).
      const above = logits.filter((v) => v > logits[follow] + TOL).length;
      const aboveOrTied = logits.filter((v, i) => v > logits[follow] - TOL && i !== follow).length;
      expect(c.followRank! - 1).toBeGreaterThanOrEqual(above);
      expect(c.followRank! - 1).toBeLessThanOrEqual(aboveOrTied);
      if (!c.topK.some((t) => t.id === follow)) outside++;
    }
    expect(outside).toBe(view.cells.length);
  });

  test('every position equals a single-position extract of it', async () => {
    for (const column of all.columns!) {
      const one = await lab.call('extract', { text: PROMPT, position: column.position, k: K, techniques: TECHNIQUES });
      expect(one.columns).toBeUndefined();
      expect(one.reference).toEqual(column.reference);
      expect(one.cells.length).toBe(column.cells.length);
      one.cells.forEach((c, i) => {
        const m = column.cells[i];
        expect([m.technique, m.layer, m.top1]).toEqual([c.technique, c.layer, c.top1]);
        expect(m.topK.map((t) => t.id)).toEqual(c.topK.map((t) => t.id));
        // Batched with other positions the float32 sums may round differently, but no more than this.
        m.topK.forEach((t, r) => expect(Math.abs(t.prob - c.topK[r].prob)).toBeLessThan(1e-6));
        expect(Math.abs(m.surprisal - c.surprisal)).toBeLessThan(1e-5);
        expect(Math.abs(m.surprisalPaper - c.surprisalPaper)).toBeLessThan(1e-5);
      });
    }
  });

  test('every (position, layer, technique) row, and its entropy, equals the float64 reference within 1e-4', () => {
    const record = all.record as { examples: RecordExample[]; techniques: Record<string, { prompt_tokens?: number[]; target_layer?: 'same' | number }> };
    const tokens = record.examples[0].tokens;
    const src = referenceForward({ config, weights, tokens });
    let checked = 0;
    for (const e of record.examples) {
      const model = logSoftmax(src.logits[e.position]);
      const referenceTop1 = argmax(model);
      expect(e.reference_top1).toBe(referenceTop1);
      for (const r of e.layers) {
        const vector = r.layer < 0 ? src.embeddings[e.position] : src.residPost[r.layer][e.position];
        const t = record.techniques[r.technique];
        let logits: Float64Array;
        if (t.prompt_tokens === undefined) {
          logits = referenceLogitLens(config, weights, vector);
        } else {
          const target = t.prompt_tokens;
          const layer = t.target_layer === 'same' ? r.layer : t.target_layer!;
          logits = referenceForward({ config, weights, tokens: target, patch: { layer, position: target.length - 1, vector } }).logits[target.length - 1];
        }
        const want = logSoftmax(logits);
        const order = Array.from(want.keys()).sort((a, b) => want[b] - want[a]).slice(0, K);
        expect(r.top1).toBe(order[0]);
        expect(r.top_k.ids).toEqual(order);
        r.top_k.probs.forEach((p, i) => expect(Math.abs(p - Math.exp(want[order[i]]))).toBeLessThan(TOL));
        expect(Math.abs(r.surprisal - -want[referenceTop1])).toBeLessThan(TOL);
        expect(Math.abs(r.surprisal_paper - -model[r.top1])).toBeLessThan(TOL);
        // The record carries the row's measures (as the sweeps' does), and the view's cell the same entropy.
        expect(Math.abs(r.entropy - -want.reduce((s, v) => s + Math.exp(v) * v, 0))).toBeLessThan(TOL);
        expect(Math.abs(r.kl - model.reduce((s, v, i) => s + Math.exp(v) * (v - want[i]), 0))).toBeLessThan(TOL);
        const cell = all.columns!.find((c) => c.position === e.position)!.cells.find((c) => c.technique === r.technique && c.layer === r.layer)!;
        expect(Math.abs(cell.entropy! - -want.reduce((s, v) => s + Math.exp(v) * v, 0))).toBeLessThan(TOL);
        checked++;
      }
    }
    expect(checked).toBe(all.tokens.length * config.nLayers * 4);
  });

  test('padding ids (at or past the tokenizer size) are listed per row in the export, and the view says where they start', () => {
    // The fixture's tokenizer is GPT-2's vocab.json + merges.txt: 50257 ids, for a 50400-row head.
    expect(all.paddingFrom).toBe(50257);
    const record = all.record as { model: { tokenizer_vocab_size: number }; examples: RecordExample[] };
    expect(record.model.tokenizer_vocab_size).toBe(50257);
    let padding = 0;
    for (const e of record.examples) {
      for (const r of e.layers) {
        expect(r.padding_ids).toEqual(r.top_k.ids.filter((id) => id >= 50257));
        padding += r.padding_ids.length;
      }
    }
    // A random head puts a padding row in some top-20 (143 of 50400 rows): the marking is exercised.
    expect(padding).toBeGreaterThan(0);
  });

  test('a range reads just those positions; bad ranges are refused with their field before any work', async () => {
    const some = await lab.call('extract', { text: PROMPT, positions: { from: 2, to: 4 }, k: 3, techniques: [{ id: 'logit_lens' }] });
    expect(some.columns!.map((c) => c.position)).toEqual([2, 3, 4]);
    expect(await lab.dispatch('extract', { text: PROMPT, positions: { from: 4, to: 2 } })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'positions' } });
    expect(await lab.dispatch('extract', { text: PROMPT, positions: { from: 0, to: 99 } })).toMatchObject({ ok: false, error: { code: 'position_out_of_range', path: 'positions.to' } });
    expect(await lab.dispatch('extract', { text: PROMPT, position: 1, positions: 'all' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'positions' } });
    expect(await lab.dispatch('extract', { text: PROMPT, positions: 'some' })).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'positions' } });
  });

  test('the command line reads a range with --positions: a table per technique, the parity line, and one example per position in --json', async () => {
    const out = path.join(tmp, 'range.json');
    const env = { ...process.env, LOGITSCOPE_DB: path.join(tmp, 'cli.sqlite'), LOGITSCOPE_CACHE_DIR: path.join(tmp, 'graphs') };
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'extract', '--model', model, '--text', PROMPT, '--positions', '1-3', '--techniques', 'logit_lens', '--json', out], { env });
    expect(stdout).toMatch(/^positions 1\.\.3 of \d+ tokens/);
    expect(stdout).toMatch(/\nlogit_lens\nlayer /);
    expect(stdout).toMatch(/parity at layer 2: PASS/);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).examples.map((e: { position: number }) => e.position)).toEqual([1, 2, 3]);
    const bad = await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'extract', '--model', model, '--text', PROMPT, '--positions', '3-x'], { env }).then(() => null, (e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/argument_invalid.*--positions|--positions.*argument_invalid|cannot read "3-x"/);
  });

  test("an extraction's parity passes: the lens and the same-layer patchscopes equal the model at the last layer; a fixed-layer one is not applicable", () => {
    expect(all.parity.status).toBe('pass');
    expect(all.parity.layer).toBe(config.nLayers - 1);
    const by = Object.fromEntries(all.parity.techniques.map((t) => [t.technique, t]));
    for (const t of ['logit_lens', 'patchscope', 'logitscope']) {
      expect(by[t].pass).toBe(true);
      expect(by[t].rows).toBe(all.tokens.length);
      expect(by[t].maxDeviation!).toBeLessThanOrEqual(all.parity.toleranceNats);
    }
    expect(by.custom_1.pass).toBeNull();
    expect(by.custom_1.why).toMatch(/into layer 1, not the last/);
    expect((all.record as { parity: { status: string } }).parity.status).toBe('pass');
  });

  test('without the last layer there is nothing to compare: parity is unchecked, not passed', async () => {
    const view = await lab.call('extract', { text: PROMPT, k: 3, layers: [0] });
    expect(view.parity.status).toBe('unchecked');
    expect(view.parity.why).toMatch(/last layer \(2\) was not read/);
  });

  test("a sweep's run carries the check too: the lens and the logitscope pass, a patchscope fixed to layer 0 is not applicable", async () => {
    const data = path.join(tmp, 'data.jsonl');
    fs.writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ text: `Line ${i} is about the ${['sea', 'sky'][i % 2]} and the land.` })).join('\n'));
    const { runId } = await lab.call('sweep.start', {
      files: [data],
      preset: 'logitscope',
      techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }, { id: 'custom', prompt: 'word: ?', targetLayer: { kind: 'fixed', layer: 0 } }],
      layers: null,
    });
    await lab.settled(runId);
    const run = await lab.call('runs.get', { runId });
    expect(run.status).toBe('completed');
    expect(run.parity.status).toBe('pass');
    expect(run.parity.techniques.map((t) => [t.technique, t.pass, t.rows])).toEqual([['logit_lens', true, run.examplesDone], ['logitscope', true, run.examplesDone], ['custom_1', null, run.examplesDone]]);
  });

  test('a stored run passes parity; a corrupted row or a wrong reference marks it failed in runs.get, runs show and the JSON export', async () => {
    const { runId } = await lab.call('extract.save', { text: PROMPT, positions: 'all', k: K });
    const run = await lab.call('runs.get', { runId });
    expect(run.examplesDone).toBe(all.tokens.length);
    expect(run.parity.status).toBe('pass');
    // The run's CSV marks padding ids per row too (the tokenizer's size is recorded with the run).
    const csv = await lab.call('runs.export', { runId, format: 'csv' });
    const [header, ...lines] = parseCsv(csv.content!);
    const col = (name: string) => header.indexOf(name);
    const listed = (f: string) => (f === '' ? [] : f.split(' ').map(Number));
    let padded = 0;
    for (const f of lines) {
      expect(listed(f[col('top_k_padding')])).toEqual(listed(f[col('top_k_ids')]).filter((id) => id >= 50257));
      padded += listed(f[col('top_k_padding')]).length;
    }
    expect(padded).toBeGreaterThan(0);

    const last = config.nLayers - 1;
    const cli = (args: string[]) => promisify(execFile)(process.execPath, ['bin/logitscope.js', ...args, '--db', dbPath]).then((r) => r.stdout);
    expect(await cli(['runs', 'show', runId])).toMatch(/parity at layer 2: PASS \(tolerance 0\.001 nats, float32\)/);

    // The store is shared by runs (rows are keyed by what determines them), so a direct write is
    // what a corrupted file or a buggy writer would leave.
    const db = new Database(dbPath);
    const technique = (name: string) => (db.prepare('SELECT technique_id AS id FROM run_techniques WHERE run_id = ? AND name = ?').get(runId, name) as { id: number }).id;
    const oneRow = db.prepare(`SELECT r.model_id, r.example_id FROM results r JOIN run_examples re ON re.example_id = r.example_id
      WHERE re.run_id = ? AND re.ordinal = 3 AND r.technique_id = ? AND r.layer = ?`).get(runId, technique('logitscope'), last) as { model_id: number; example_id: number };
    const where = 'model_id = ? AND example_id = ? AND technique_id = ? AND layer = ?';
    db.prepare(`UPDATE results SET surprisal = surprisal + 0.01 WHERE ${where}`).run(oneRow.model_id, oneRow.example_id, technique('logitscope'), last);
    let marked = await lab.call('runs.get', { runId });
    expect(marked.parity.status).toBe('fail');
    const logitscope = marked.parity.techniques.find((t) => t.technique === 'logitscope')!;
    expect(logitscope.pass).toBe(false);
    expect(logitscope.maxDeviation!).toBeGreaterThan(0.009);
    expect(marked.parity.techniques.find((t) => t.technique === 'logit_lens')!.pass).toBe(true);
    expect(await cli(['runs', 'show', runId])).toMatch(/parity at layer 2: FAIL .*logitscope FAIL \(0 top-1 mismatches of \d+/);
    db.prepare(`UPDATE results SET surprisal = surprisal - 0.01 WHERE ${where}`).run(oneRow.model_id, oneRow.example_id, technique('logitscope'), last);
    expect((await lab.call('runs.get', { runId })).parity.status).toBe('pass');

    // A deliberately wrong reference: the lens's top-1 no longer equals "the model's own".
    db.prepare(`UPDATE results SET reference_top1 = reference_top1 + 1 WHERE ${where}`).run(oneRow.model_id, oneRow.example_id, technique('logit_lens'), last);
    db.close();
    marked = await lab.call('runs.get', { runId });
    expect(marked.parity.status).toBe('fail');
    expect(marked.parity.techniques.find((t) => t.technique === 'logit_lens')).toMatchObject({ pass: false, top1Mismatches: 1 });
    const out = path.join(tmp, 'run.json');
    await lab.call('runs.export', { runId, format: 'json', out });
    const exported = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(exported.parity).toMatchObject({ status: 'fail', layer: last, toleranceNats: 1e-3 });
    expect(exported.parity.method).toMatch(/last layer/);
  });
});

function argmax(v: Float64Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
