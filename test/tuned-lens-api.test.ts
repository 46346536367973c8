/**
 * The tuned lens through the API (real Lab, engine and SQLite file): the fit's progress in the
 * sweep.preparing events, the run and its JSON export naming the lens, a second sweep reusing the
 * fitted lens (by call counts), bad lens settings refused before any run exists, and `extract`
 * reading through the lens last fitted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EventName } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { lensStats } from '../src-main/lens/fit.ts';
import { LENS_META, LENS_WEIGHTS } from '../src-main/protocol/lens-settings.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tuned-lens-api-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');

describe('the tuned lens through the API', () => {
  let lab: Lab;
  const events: { name: EventName; payload: any }[] = [];
  const waitFor = (pred: () => boolean) => expect.poll(pred, { timeout: 60_000 }).toBe(true);
  // Evaluate on records 0..7 (pool 0..9, limit 8); the lens trains on the records after the pool.
  const request = (over: object = {}) => ({
    files: [data],
    preset: 'logitscope' as const,
    overrides: { poolEnd: 10, limit: 8 },
    techniques: [{ id: 'logit_lens' as const }, { id: 'tuned_lens' as const }],
    layers: null,
    k: 3,
    ...over,
  });

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 43, config: { n_layer: 3, n_embd: 32 } });
    const topics = ['the sea', 'a city', 'the old forest', 'a river', 'the mountains'];
    fs.writeFileSync(data, Array.from({ length: 90 }, (_, i) => JSON.stringify({ text: `Line ${i} is about ${topics[i % topics.length]} and more.` })).join('\n'));
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    lab.onEvent((name, payload) => events.push({ name, payload }));
    await lab.call('model.load', { dir: model });
  });
  afterAll(async () => lab?.close());

  test('a sweep fits the lens with progress events, names it in the run and its export, and the next sweep reuses it', async () => {
    const fits = lensStats.fits;
    const { runId } = await lab.call('sweep.start', request({ requestId: 'fit' }));
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === runId));
    expect(lensStats.fits).toBe(fits + 1);
    const lensEvents = events.filter((e) => e.name === 'sweep.preparing' && e.payload.requestId === 'fit' && e.payload.lens).map((e) => e.payload.lens);
    expect(lensEvents[0].phase).toBe('selecting');
    const collected = lensEvents.filter((l) => l.phase === 'collecting');
    expect(collected.at(-1)).toEqual({ phase: 'collecting', done: 72, total: 72 }); // records 10..89, less every tenth (held out)
    expect(lensEvents.filter((l) => l.phase === 'checking').at(-1)).toEqual({ phase: 'checking', done: 8, total: 8 });
    expect(lensEvents.filter((l) => l.phase === 'selecting').at(-1).done).toBeGreaterThan(0); // records read
    expect(lensEvents.filter((l) => l.phase === 'solving').map((l) => l.done)).toEqual([0, 1, 2, 3]);

    const view = await lab.call('runs.get', { runId });
    expect(view.techniques).toEqual(['logit_lens', 'tuned_lens']);
    expect(view.techniquePrompts.tuned_lens.lens).toMatch(/^affine tuned lens [0-9a-f]{12}: fitted on items 0\.\.9999 of records 10\.\.\d+ in file order \(72 examples\), position seed 0, ridge 0\.00001/);
    const json = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!);
    expect(json.techniques.tuned_lens.lens).toMatchObject({ examples: 72, ridge: 1e-5, train: { poolStart: 10, start: 0, end: 10_000, shuffleSeed: null } });
    expect(view.techniquePrompts.tuned_lens.lens).toContain(json.techniques.tuned_lens.lens.key.slice(0, 12));

    // Again, with a new run name: the lens comes from the cache; no fit, no fit progress.
    const before = events.length;
    const again = await lab.call('sweep.start', request({ requestId: 'again', name: 'again' }));
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === again.runId));
    expect(lensStats.fits).toBe(fits + 1);
    expect(events.slice(before).some((e) => e.name === 'sweep.preparing' && e.payload.lens?.phase === 'collecting')).toBe(false);
    expect((await lab.call('runs.get', { runId: again.runId })).techniquePrompts.tuned_lens.lens).toBe(view.techniquePrompts.tuned_lens.lens);

    // extract reads through the lens last fitted for the model.
    const extracted = await lab.call('extract', { text: 'Line 3 is about the sea', techniques: [{ id: 'tuned_lens' }], k: 3 });
    expect(extracted.cells.filter((c) => c.technique === 'tuned_lens')).toHaveLength(3);
    // Lens settings belong to a fit, which extract does not do: refused, not silently ignored.
    const settings = await lab.dispatch('extract', { text: 'Line 3 is about the sea', techniques: [{ id: 'logit_lens' }, { id: 'tuned_lens', lens: { ridge: 0.01 } }] });
    expect(settings).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'techniques.1.lens', message: expect.stringMatching(/fits none itself/) } });
  }, 180_000);

  test('a train slice that overlaps the evaluated records, or a bad ridge, is refused before any run exists', async () => {
    const runs = (await lab.call('runs.list', {})).length;
    const overlap = await lab.dispatch('sweep.start', request({ techniques: [{ id: 'tuned_lens', lens: { train: { poolStart: 0, poolEnd: 10, end: 10 } } }] }));
    expect(overlap).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'techniques.0.lens.train', message: expect.stringMatching(/overlaps the evaluation slice, items 0\.\.7 of the same pool; .*--eval-start 10/) } });
    const records = await lab.dispatch('sweep.start', request({ techniques: [{ id: 'tuned_lens', lens: { train: { poolStart: 4, poolEnd: 40, end: 30 } } }] }));
    expect(records).toMatchObject({ ok: false, error: { code: 'argument_invalid', message: expect.stringMatching(/also evaluation records/) } });
    const ridge = await lab.dispatch('sweep.start', request({ techniques: [{ id: 'tuned_lens', lens: { ridge: 0 } }] }));
    expect(ridge).toMatchObject({ ok: false, error: { code: 'argument_invalid', path: 'techniques.0.lens.ridge' } });
    expect((await lab.call('runs.list', {})).length).toBe(runs);
  });

  test('a lens file zeroed in place is refused (cache_corrupt), fitted again; a lens that fails its own check on load is refused; a lens of other content never gets the old rows', async () => {
    const summaryOf = async (runId: string) => (await lab.call('runs.get', { runId })).summary.filter((r) => r.technique === 'tuned_lens').map((r) => [r.layer, r.precision.mean]);
    const sweep = async (requestId: string) => {
      const { runId } = await lab.call('sweep.start', request({ requestId, name: requestId }));
      await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === runId));
      return runId;
    };
    const first = await sweep('genuine');
    const record = JSON.parse((await lab.call('runs.export', { runId: first, format: 'json' })).content!).techniques.tuned_lens.lens;
    const dir = path.join(tmp, 'graphs', fs.readdirSync(path.join(tmp, 'graphs')).find((n) => n !== 'content-hashes.json')!, 'float32', 'tuned-lens', record.key);
    const weights = path.join(dir, LENS_WEIGHTS);
    const genuine = fs.readFileSync(weights);
    expect(record.contentHash).toMatch(/^[0-9a-f]{64}$/);

    // Zeroed, same size: refused with the file named and what happens next, then fitted again.
    fs.writeFileSync(weights, Buffer.alloc(genuine.length));
    const fits = lensStats.fits;
    const zeroed = await sweep('zeroed');
    expect(lensStats.fits).toBe(fits + 1);
    const refused = events.find((e) => e.name === 'sweep.preparing' && e.payload.requestId === 'zeroed' && e.payload.lens?.refused)?.payload.lens.refused;
    expect(refused).toContain(`[cache_corrupt] ${weights}`);
    expect(refused).toMatch(/content changed since it was written.*refused and will be rebuilt/);
    expect(fs.readFileSync(weights).equals(genuine)).toBe(true); // the same settings fit the same lens
    expect(await summaryOf(zeroed)).toEqual(await summaryOf(first));

    // A lens whose weights and recorded hash were both replaced (every map zeroed, the hash made to
    // match): its own check, computed again on load, fails, so it is refused and fitted again.
    const meta = JSON.parse(fs.readFileSync(path.join(dir, LENS_META), 'utf8'));
    const L = meta.nLayers;
    const d = meta.dModel;
    const { createHash } = await import('node:crypto');
    const forge = (weightsOut: Float32Array) => {
      fs.writeFileSync(weights, weightsOut);
      fs.writeFileSync(path.join(dir, LENS_META), JSON.stringify({ ...meta, weightsSha256: createHash('sha256').update(fs.readFileSync(weights)).digest('hex') }));
    };
    const zeroMaps = new Float32Array(genuine.length / 4);
    for (let j = 0; j < d; j++) zeroMaps[(L * d + j) * d + j] = 1; // the last map stays the identity
    forge(zeroMaps);
    const fitsBeforeForged = lensStats.fits;
    const forged = await sweep('forged');
    expect(lensStats.fits).toBe(fitsBeforeForged + 1);
    const failed = events.find((e) => e.name === 'sweep.preparing' && e.payload.requestId === 'forged' && e.payload.lens?.refused)?.payload.lens.refused;
    expect(failed).toMatch(/^\[cache_corrupt\] .*lens\.json: the tuned lens fails its own check: on its 8 probe examples at layer -1 it now reads fit error .* where it recorded .*; it is refused and will be fitted again$/);
    expect(await summaryOf(forged)).toEqual(await summaryOf(first));

    // A lens of other content that passes its check (every weight nudged by one part in 10⁶): its
    // rows are keyed by its own content hash, so none is taken from the genuine lens's rows.
    const fromCache = (requestId: string) => events.filter((e) => e.name === 'sweep.progress' && e.payload.requestId === requestId).at(-1)!.payload.progress.examplesFromCache;
    const nudged = new Float32Array(new Uint8Array(fs.readFileSync(weights)).buffer).map((v) => v * (1 + 1e-6));
    forge(nudged);
    const other = await sweep('nudged');
    expect(events.some((e) => e.name === 'sweep.preparing' && e.payload.requestId === 'nudged' && e.payload.lens?.refused)).toBe(false);
    expect(fromCache('nudged')).toBe(0);
    const otherRecord = JSON.parse((await lab.call('runs.export', { runId: other, format: 'json' })).content!).techniques.tuned_lens.lens;
    expect(otherRecord.key).toBe(record.key);
    expect(otherRecord.contentHash).not.toBe(record.contentHash);
    // Fitted again (the folder cleared), the genuine lens's rows are served from the cache again.
    fs.rmSync(dir, { recursive: true });
    const refit = await sweep('refit');
    expect(fromCache('refit')).toBe(8);
    expect(await summaryOf(refit)).toEqual(await summaryOf(first));
  }, 180_000);

  test('Cancel during a fit (sweep.cancel by the request id, before the run exists) stops it: sweep.start fails with cancelled, no run is created, no lens folder is left', async () => {
    const runs = (await lab.call('runs.list', {})).length;
    const fits = lensStats.fits;
    // A ridge no other test uses: a lens not in the cache yet.
    const started = lab.call('sweep.start', request({ requestId: 'stop', techniques: [{ id: 'tuned_lens', lens: { ridge: 0.0123 } }] }));
    const outcome = started.then(() => 'started', (e) => e);
    await waitFor(() => events.some((e) => e.name === 'sweep.preparing' && e.payload.requestId === 'stop' && e.payload.lens?.phase === 'collecting'));
    expect(await lab.call('sweep.cancel', { requestId: 'stop' })).toEqual({ cancelled: true });
    const error = await outcome;
    expect(error).toMatchObject({ code: 'cancelled' });
    expect(lensStats.fits).toBe(fits);
    expect((await lab.call('runs.list', {})).length).toBe(runs);
    const lensRoots = fs.readdirSync(path.join(tmp, 'graphs'), { recursive: true }).map(String).filter((f) => /tuned-lens\/[^/]+$/.test(f));
    expect(lensRoots.filter((f) => f.includes('partial'))).toEqual([]);
    // A run id and a request id together, or neither, is refused.
    expect(await lab.dispatch('sweep.cancel', {})).toMatchObject({ ok: false, error: { code: 'argument_invalid' } });
  }, 60_000);
});
