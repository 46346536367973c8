/**
 * The affine tuned lens on the families beyond GPT-J, through the Lab (real engine, real SQLite
 * file): a sweep fits the lens on a small train slice of a tiny checkpoint and reads through it;
 * every stored row equals the float64 reference of the lens as stored (its weights file applied in
 * float64 to the reference residual, then the reference logit lens) within 1e-4 nats; the run's
 * parity passes with the lens the identity at the last layer; and the logit-lens picture (an
 * extraction at every position, through the lens last fitted) reads the same numbers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EventName } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { LENS_META, LENS_WEIGHTS } from '../src-main/protocol/lens-settings.ts';
import { expectRowsMatchReference, storedLensMap, type ReferenceTechnique } from './fixtures/family-rows.ts';
import { FAMILIES, writeTinyFamily, type TinyFamily } from './fixtures/hf-families.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'family-tuned-lens-'));
const data = path.join(tmp, 'lines.jsonl');
const graphs = path.join(tmp, 'graphs');

let lab: Lab;
const events: { name: EventName; payload: any }[] = [];
const waitFor = (pred: () => boolean) => expect.poll(pred, { timeout: 120_000, interval: 50 }).toBe(true);

beforeAll(async () => {
  // Evaluation: records 0..3 (pool 0..9); the lens trains on records 10..79, every tenth held out.
  writeTopicRecords(data, 80);
  lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: graphs });
  lab.onEvent((name, payload) => events.push({ name, payload }));
});
afterAll(async () => {
  await lab?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The lens folder of `key` in the Lab's cache (lens/lens.ts lensDir, under the model's own folder). */
function lensFolder(key: string): string {
  const found = fs.readdirSync(graphs, { recursive: true }).map(String).filter((f) => f.endsWith(path.join('tuned-lens', key)));
  expect(found).toHaveLength(1);
  return path.join(graphs, found[0]);
}

describe.each(FAMILIES)('%s', (family) => {
  let ckpt: TinyFamily;
  let layers: number[];
  let dModel: number;
  let lens: ReferenceTechnique;

  beforeAll(async () => {
    ckpt = writeTinyFamily({ dir: path.join(tmp, family), family, seed: 13 });
    const view = await lab.call('model.load', { dir: ckpt.dir });
    layers = Array.from({ length: view.config.nLayers + 1 }, (_, i) => i - 1);
    dModel = view.config.dModel;
  }, 120_000);

  test('a sweep fits the lens, and each of its rows equals the float64 application of the stored lens within 1e-4 nats; parity passes', async () => {
    const requestId = `lens-${family}`;
    const { runId } = await lab.call('sweep.start', {
      files: [data], preset: 'logitscope', overrides: { poolEnd: 10, limit: 4 }, techniques: [{ id: 'logit_lens' }, { id: 'tuned_lens' }], layers, k: 5, requestId,
    });
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === runId));
    const record = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!);
    expect(record.techniques.tuned_lens.lens).toMatchObject({ examples: 63, train: { poolStart: 10 } });
    const dir = lensFolder(record.techniques.tuned_lens.lens.key);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, LENS_META), 'utf8'));
    expect([meta.nLayers, meta.dModel]).toEqual([layers.length - 1, dModel]);
    const stored = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, LENS_WEIGHTS))).buffer);
    lens = { kind: 'mapped', map: storedLensMap(stored, meta.nLayers, meta.dModel) };

    const check = expectRowsMatchReference(ckpt, record.examples, { logit_lens: { kind: 'logit_lens' }, tuned_lens: lens });
    expect(check.rows).toBe(4 * layers.length * 2);
    expect(check.nearTies).toBeLessThanOrEqual(2);
    // Fitted, not the identity: below the last layer the lens reads otherwise than the logit lens.
    const surprisals = (technique: string) =>
      record.examples.flatMap((e: any) => e.layers.filter((l: any) => l.technique === technique && l.layer < meta.nLayers - 1).map((l: any) => l.surprisal));
    expect(surprisals('tuned_lens')).not.toEqual(surprisals('logit_lens'));
    expect(record.parity.status).toBe('pass');
    expect(record.parity.techniques.map((t: { technique: string; pass: boolean }) => [t.technique, t.pass])).toEqual([['logit_lens', true], ['tuned_lens', true]]);
  }, 300_000);

  test('the logit-lens picture (every position of a prompt) reads through the lens just fitted, equal to the reference within 1e-4 nats', async () => {
    const view = await lab.call('extract', { text: 'the people of the old mill', positions: 'all', techniques: [{ id: 'logit_lens' }, { id: 'tuned_lens' }], layers, k: 5 });
    expect(view.columns).toHaveLength(view.tokens.length);
    const record = view.record as { examples: any[] };
    const check = expectRowsMatchReference(ckpt, record.examples, { logit_lens: { kind: 'logit_lens' }, tuned_lens: lens });
    expect(check.rows).toBe(view.tokens.length * layers.length * 2);
    expect(view.parity.status).toBe('pass');
  }, 300_000);
});
