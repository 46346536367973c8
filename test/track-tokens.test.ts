/**
 * Tracked record tokens through the Lab (a real SQLite file, real onnxruntime sessions): a sweep
 * with track 'record' follows each record's own `track` token, and every cell of the inspector and
 * of the exports carries its exact probability and rank, in or out of the top-k. The numbers are
 * checked against float64 in test/measures.test.ts; here they are checked against two other
 * routes to the same quantity: the Extract view's `follow` on the same tokens, and, when the
 * tracked token is the reference itself, the row's own surprisal and rank.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ApiEvents, ExampleView } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'track-tokens-'));
const model = path.join(tmp, 'model');
const dbPath = path.join(tmp, 'results.sqlite');
const N = 8;
const TEXTS = Array.from({ length: N }, (_, i) => `Record ${i} walks the ${['dog', 'cat', 'river', 'house'][i % 4]} home before the rain.`);
const TECHNIQUES = [{ id: 'logit_lens' as const }, { id: 'patchscope' as const }, { id: 'logitscope' as const }];

/** A jsonl file of TEXTS whose i-th record carries track(i), where that is given. */
function dataFile(name: string, track: (i: number) => unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, TEXTS.map((text, i) => JSON.stringify({ text, ...(track(i) !== undefined && { track: track(i) }) })).join('\n') + '\n');
  return file;
}

describe("sweeps that follow each record's own track token", () => {
  let lab: Lab;
  const progress: ApiEvents['sweep.progress'][] = [];
  const sweep = async (files: string[], extra: { track?: 'record' | 'reference' } = {}) => {
    const { runId } = await lab.call('sweep.start', { files, preset: 'logitscope', techniques: TECHNIQUES, layers: null, k: 3, ...extra });
    await lab.settled(runId);
    return runId;
  };
  const examplesOf = (runId: string) => Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId, ordinal })));
  const resultRows = () => {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 63 });
    lab = await Lab.open({ dbPath, cacheRoot: path.join(tmp, 'graphs') });
    lab.onEvent((name, payload) => name === 'sweep.progress' && progress.push(payload as ApiEvents['sweep.progress']));
    await lab.call('model.load', { dir: model });
  });
  afterAll(async () => lab?.close());

  test('every cell has the exact probability and rank of the record token, equal to Extract following it on the same tokens', async () => {
    // Text tokens (with the leading space GPT-2 tokens carry) and ids, mixed.
    const data = dataFile('mixed.jsonl', (i) => (i % 2 === 0 ? ' the' : 4000 + i));
    const runId = await sweep([data], { track: 'record' });
    const run = await lab.call('runs.get', { runId });
    expect(run).toMatchObject({ status: 'completed', examplesDone: N, track: 'record' });
    expect(run.command).toContain('--track record');
    const examples = await examplesOf(runId);
    let outsideTopK = 0;
    for (const ex of examples) {
      const wanted = ex.recordIndex % 2 === 0 ? (await lab.call('extract.tokenize', { text: ' the' })).tokens[0].id : 4000 + ex.recordIndex;
      expect(ex.follow?.id).toBe(wanted);
      expect(ex.cells).toHaveLength(3 * 3);
      const extract = await lab.call('extract', {
        text: TEXTS[ex.recordIndex], bos: run.protocol.bos, position: ex.position, techniques: TECHNIQUES, k: 3, follow: wanted,
      });
      expect(extract.tokens.map((t) => t.id)).toEqual(ex.tokens.map((t) => t.id));
      for (const cell of ex.cells) {
        const other = extract.cells.find((c) => c.technique === cell.technique && c.layer === cell.layer)!;
        const where = `example ${ex.ordinal}, ${cell.technique} layer ${cell.layer}`;
        expect(cell.followProb, where).toBeGreaterThan(0);
        expect(Math.abs(Math.log(cell.followProb!) - Math.log(other.followProb!)), where).toBeLessThan(1e-4);
        expect(cell.followRank, where).toBe(other.followRank);
        if (!cell.topK.some((t) => t.id === wanted)) {
          outsideTopK++;
          expect(cell.followRank!, where).toBeGreaterThan(3); // a number, though outside the stored top-3
        }
      }
    }
    expect(outsideTopK).toBeGreaterThan(0);
  });

  test('following the reference itself gives back each row’s surprisal and rank; the results rows are read from the cache, not stored again', async () => {
    const plainData = dataFile('plain.jsonl', () => undefined);
    const plain = await examplesOf(await sweep([plainData]));
    expect(plain.every((e) => e.follow === undefined && e.cells.every((c) => c.followProb === undefined))).toBe(true);
    const before = resultRows();

    // The same texts, each record following the reference its example read (the sweep draws the same positions).
    const byRecord = new Map(plain.map((e) => [e.recordIndex, e.reference.id]));
    const refData = dataFile('reference.jsonl', (i) => byRecord.get(i));
    const runId = await sweep([refData], { track: 'record' });
    for (const ex of await examplesOf(runId)) {
      expect(ex.follow?.id).toBe(ex.reference.id);
      for (const c of ex.cells) {
        expect(Math.abs(-Math.log(c.followProb!) - c.surprisal), `${c.technique} layer ${c.layer}`).toBeLessThan(1e-5);
        expect(c.followRank! - 1).toBe(c.rank);
      }
    }
    expect(resultRows()).toBe(before);

    // Again: everything, tracked rows included, comes from the cache.
    progress.length = 0;
    const again = await sweep([refData], { track: 'record' });
    expect(progress.filter((p) => p.runId === again).at(-1)?.progress).toMatchObject({ examplesDone: N, examplesFromCache: N });
    expect((await examplesOf(again)).map(followed)).toEqual((await examplesOf(runId)).map(followed));
  });

  test('the summary averages the followed tokens per technique and layer, live and stored alike, as the examples add up', async () => {
    progress.length = 0;
    const runId = await sweep([dataFile('summary.jsonl', (i) => [' the', ' and', ' a'][i % 3])], { track: 'record' });
    const run = await lab.call('runs.get', { runId });
    const examples = await examplesOf(runId);
    expect(run.summary).toHaveLength(3 * 3);
    for (const row of run.summary) {
      const cells = examples.map((e) => e.cells.find((c) => c.technique === row.technique && c.layer === row.layer)!);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(row.tracked?.n).toBe(N);
      expect(row.tracked!.surprisal.mean).toBeCloseTo(mean(cells.map((c) => -Math.log(c.followProb!))), 5);
      expect(row.tracked!.rank.mean).toBeCloseTo(mean(cells.map((c) => c.followRank! - 1)), 9);
      expect(row.tracked!.surprisal.low).toBeLessThan(row.tracked!.surprisal.high!);
    }
    // The live summary the last progress event carried is the stored one.
    const live = progress.filter((p) => p.runId === runId).at(-1)!.progress.summary;
    for (const row of run.summary) {
      const l = live.find((x) => x.technique === row.technique && x.layer === row.layer)!;
      expect(l.tracked!.n).toBe(row.tracked!.n);
      expect(l.tracked!.surprisal.mean).toBeCloseTo(row.tracked!.surprisal.mean, 9);
      expect(l.tracked!.rank.mean).toBeCloseTo(row.tracked!.rank.mean, 9);
    }
    const exported = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!).summary.rows;
    expect(exported[0]).toMatchObject({ n_tracked: N, tracked_surprisal: { mean: run.summary[0].tracked!.surprisal.mean } });
    // A run that follows nothing has no tracked summary.
    expect((await lab.call('runs.get', { runId: await sweep([dataFile('plain3.jsonl', () => undefined)]) })).summary.every((r) => r.tracked === null)).toBe(true);
  });

  test('the exports carry the tracked token: JSON per example and per layer, CSV and Parquet columns', async () => {
    const data = dataFile('export.jsonl', () => ' the');
    const runId = await sweep([data], { track: 'record' });
    const json = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!);
    const the = (await lab.call('extract.tokenize', { text: ' the' })).tokens[0].id;
    expect(json.conventions.tracked).toContain('track_logprob');
    expect(json.examples).toHaveLength(N);
    for (const e of json.examples) {
      expect(e.track_token).toBe(the);
      for (const l of e.layers) expect(l.tracked).toMatchObject({ id: the, logprob: expect.any(Number), rank: expect.any(Number) });
    }
    const csv = (await lab.call('runs.export', { runId, format: 'csv' })).content!.trim().split('\n');
    const header = csv[0].split(',');
    const column = (name: string) => header.indexOf(name);
    expect(column('track_token')).toBeGreaterThan(0);
    const first = json.examples[0].layers[0];
    const row = csv[1].split(',');
    expect(Number(row[column('track_token')])).toBe(the);
    expect(Number(row[column('track_logprob')])).toBeCloseTo(first.tracked.logprob, 6);
    expect(Number(row[column('track_rank')])).toBe(first.tracked.rank);
    const out = path.join(tmp, 'tracked.parquet');
    await lab.call('runs.export', { runId, format: 'parquet', out });
    const buf = fs.readFileSync(out);
    const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) });
    expect(rows).toHaveLength(csv.length - 1);
    expect(rows[0]).toMatchObject({ track_token: the, track_rank: first.tracked.rank });
    expect(rows[0].track_logprob).toBeCloseTo(first.tracked.logprob, 6);
    // A run that follows nothing leaves the columns empty.
    const plainCsv = (await lab.call('runs.export', { runId: await sweep([dataFile('plain2.jsonl', () => undefined)]), format: 'csv' })).content!.trim().split('\n');
    expect(plainCsv[1].split(',')[column('track_token')]).toBe('');
  });

  test('deleting a run keeps the tracked rows another run reads, and removes the rest with its examples', async () => {
    const count = (table: 'tracked' | 'examples') => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const texts = TEXTS.map((t) => `${t} Deleted soon.`);
    const file = path.join(tmp, 'delete.jsonl');
    fs.writeFileSync(file, texts.map((text) => JSON.stringify({ text, track: ' the' })).join('\n'));
    const [before, examplesBefore] = [count('tracked'), count('examples')];
    const first = await sweep([file], { track: 'record' });
    const second = await sweep([file], { track: 'record' });
    expect(count('tracked') - before).toBe(N * 3 * 3); // the second run reads the first's rows
    const kept = await examplesOf(second);
    expect(await lab.call('runs.delete', { runId: first })).toEqual({ deleted: true });
    expect(count('tracked') - before).toBe(N * 3 * 3);
    expect(await examplesOf(second)).toEqual(kept);
    expect(await lab.call('runs.delete', { runId: second })).toEqual({ deleted: true });
    expect([count('tracked'), count('examples')]).toEqual([before, examplesBefore]);
  });

  test('the dataset preview counts the records that carry a track token and shows each sample\'s', async () => {
    const preview = (file: string) => lab.call('dataset.preview', { files: [file], preset: 'logitscope', sampleCount: 3 });
    const mixed = await preview(dataFile('preview.jsonl', (i) => (i < 5 ? (i % 2 ? 4000 + i : ' the') : undefined)));
    expect(mixed).toMatchObject({ passed: N, withTrack: 5 });
    expect(mixed.samples.map((x) => x.track)).toEqual([' the', 4001, ' the']);
    expect((await preview(dataFile('preview-plain.jsonl', () => undefined))).withTrack).toBe(0);
  });

  test('bad track tokens are refused before any run is made, naming every bad record', async () => {
    const runsBefore = (await lab.call('runs.list', {})).length;
    const cases: [string, (i: number) => unknown, RegExp][] = [
      ['missing', (i) => (i === 3 ? undefined : ' the'), /record 3 has no "track" field/],
      ['several tokens', (i) => (i === 5 ? ' hippopotamus river' : ' the'), /record 5: track " hippopotamus river" is \d+ tokens \(.*\), not one/],
      ['id out of range', (i) => (i === 1 ? 50400 : 17), /record 1: track id 50400 is not a token id of this model \(0\.\.50399\)/],
      ['not text or an id', (i) => (i === 2 ? { token: 'x' } : ' the'), /record 2 has no "track" field/],
    ];
    for (const [what, track, message] of cases) {
      const reply = await lab.dispatch('sweep.start', { files: [dataFile(`bad-${what}.jsonl`, track)], preset: 'logitscope', techniques: TECHNIQUES, layers: null, track: 'record' });
      expect(reply, what).toMatchObject({ ok: false, error: { code: 'track_token_invalid', path: 'track', message: expect.stringMatching(message) } });
    }
    const naive = await lab.dispatch('sweep.start', { files: [dataFile('naive.jsonl', () => ' the')], preset: 'logitscope', techniques: TECHNIQUES, layers: null, strategy: 'naive', track: 'record' });
    expect(naive).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'track' } });
    expect((await lab.call('runs.list', {})).length).toBe(runsBefore);
  });
});

/** An example's followed numbers, cell by cell. */
function followed(e: ExampleView) {
  return { follow: e.follow, cells: e.cells.map((c) => [c.technique, c.layer, c.followProb, c.followRank]) };
}
