import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';
import { exampleKey, modelKey, techniqueKey } from '../src-main/store/keys.ts';
import { defaultDbPath } from '../src-main/db-paths.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { rowsFromResults } from '../src-main/store/rows.ts';
import { layerResultOf } from '../src-main/sweep/readout.ts';
import { runSweepCache } from '../src-main/store/sweep-cache.ts';
import { APPLICATION_ID, SCHEMA_VERSION } from '../src-main/store/schema.ts';
import { summarize } from '../src-main/sweep/intervals.ts';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import type { RunExampleInput } from '../src-main/store/types.ts';
import { asStored, examples, fakeResults, freshStore, LENS, MODEL, newRun, PROTOCOL, SCOPE, sweep } from './fixtures/store-runs.ts';

describe('results cache', () => {
  it('a run saved in batches reads back the same after the file is reopened', () => {
    const { store: first, reopen } = freshStore();
    const exs = examples(0, 5);
    const id = sweep(first, newRun({ name: 'first', examplesPlanned: 2000 }), exs);
    first.close();
    const store = reopen();
    expect(store.runResults(id)).toEqual(asStored(fakeResults(exs, [LENS, SCOPE], [0, 1, 2], 3)));
    const run = store.getRun(id);
    expect(run).toMatchObject({ name: 'first', status: 'completed', examplesPlanned: 5, examplesDone: 5, k: 3, techniques: ['logit_lens', 'logitscope'], timings: { extract: 12 } });
    expect(run.resolvedTechniques).toEqual([LENS, SCOPE]);
    expect(run.protocol).toEqual(PROTOCOL);
    expect(store.runExamples(id).map((e) => [e.ordinal, e.recordIndex, e.source, e.done])).toEqual(exs.map((e) => [e.ordinal, e.recordIndex, 'Pile-CC', true]));
  });

  it('lookup returns only stored rows, cut to k, and misses rows stored with a shorter top-k', () => {
    const { store } = freshStore();
    const id = store.createRun(newRun());
    store.setRunExamples(id, examples(0, 4));
    store.saveBatch(id, rowsFromResults(fakeResults(examples(0, 2), [LENS, SCOPE], [0, 1, 2], 3), [LENS, SCOPE]));
    const q = { modelKey: MODEL.key, exampleKeys: examples(0, 4).map((e) => exampleKey(e.tokens, e.position)), techniqueKeys: [techniqueKey(LENS)], layers: [1, 2, 5], k: 2 };
    const hits = store.lookup(q);
    expect([...hits.keys()].sort()).toEqual(q.exampleKeys.slice(0, 2).flatMap((e) => [1, 2].map((l) => `${e}|${techniqueKey(LENS)}|${l}`)).sort());
    const expected = fakeResults(examples(0, 1), [LENS], [1], 3)[0].layers[0];
    expect(layerResultOf({ ...hits.get(`${q.exampleKeys[0]}|${techniqueKey(LENS)}|1`)!, technique: 'logit_lens' })).toEqual({
      ...expected, top_k: { ids: expected.top_k.ids.slice(0, 2), probs: expected.top_k.probs.slice(0, 2).map(Math.fround) },
    });
    expect(store.lookup({ ...q, k: 4 }).size).toBe(0);
    expect(store.lookup({ ...q, modelKey: 'ckpt-a:float16:cpu' }).size).toBe(0);
  });

  it('two runs that share examples share rows, and deleting one keeps the other intact', () => {
    const { store } = freshStore();
    const a = sweep(store, newRun(), examples(0, 6));
    const bRun = newRun({ techniques: [{ ...SCOPE, id: 'custom_1', prompt: 'same tokens, other text' }] });
    const b = store.createRun(bRun);
    store.setRunExamples(b, examples(3, 9));
    // Examples 3..5 were computed by run a (same tokens, position, technique tokens): done at once.
    expect(store.getRun(b).examplesDone).toBe(3);
    store.saveBatch(b, rowsFromResults(fakeResults(examples(3, 9).slice(3), bRun.techniques, bRun.layers, 3), bRun.techniques));
    store.finishRun(b, { status: 'completed' });
    const bBefore = store.runResults(b);
    expect(bBefore.map((e) => e.layers[0].technique)).toEqual(Array(6).fill('custom_1'));

    store.deleteRun(a);
    expect(() => store.getRun(a)).toThrowError(expect.objectContaining({ code: 'run_not_found' }));
    expect(store.runResults(b)).toEqual(bBefore);
    const keys = (exs: RunExampleInput[]) => exs.map((e) => exampleKey(e.tokens, e.position));
    const q = { modelKey: MODEL.key, techniqueKeys: [techniqueKey(LENS), techniqueKey(SCOPE)], layers: [0, 1, 2], k: 3 };
    expect(store.lookup({ ...q, exampleKeys: keys(examples(0, 6)) }).size).toBe(3 * 3); // only run b's: scope rows of 3..5
    store.deleteRun(b);
    expect(store.lookup({ ...q, exampleKeys: keys(examples(0, 9)) }).size).toBe(0);
    expect(store.listRuns()).toEqual([]);
  });

  it('as the sweep cache, a run gets what earlier runs stored and saves only what the sweep computed', async () => {
    const { store } = freshStore();
    sweep(store, newRun(), examples(0, 4));
    const custom: ResolvedTechnique = { id: 'custom_1', kind: 'patchscope', prompt: 'hello->there;?->', promptTokens: [50256, 31373, 3784], targetLayer: { kind: 'same' } };
    const run = newRun({ techniques: [LENS, SCOPE, custom] });
    const id = store.createRun(run);
    const exs = examples(2, 6);
    store.setRunExamples(id, exs);
    const cache = runSweepCache(store, id);
    const known = await cache.lookup([0, 1, 2, 3]);
    expect([...known.keys()]).toEqual([0, 1]); // examples 2 and 3, from the first run
    const earlier = fakeResults(exs.slice(0, 1), [LENS, SCOPE], [0, 1, 2], 3)[0];
    expect(known.get(0)).toEqual(asStored([earlier])[0]);

    const computed = fakeResults(exs.slice(0, 1), [custom], [0, 1, 2], 3)[0];
    await cache.save([{ ordinal: 0, result: { ...earlier, layers: [...earlier.layers, ...computed.layers] }, computed: computed.layers }]);
    expect(store.getRun(id).examplesDone).toBe(1);
    expect((await cache.lookup([0])).get(0)!.layers.map((l) => l.technique)).toEqual([...Array(3).fill('logit_lens'), ...Array(3).fill('logitscope'), ...Array(3).fill('custom_1')]);
  });

  it('a row stored with a longer top-k is kept when a run with a shorter k saves the same cell', () => {
    const { store } = freshStore();
    const long = sweep(store, newRun({ k: 5 }), examples(0, 2));
    const before = store.runResults(long);
    const short = store.createRun(newRun({ k: 3 }));
    store.setRunExamples(short, examples(0, 2));
    store.saveBatch(short, rowsFromResults(fakeResults(examples(0, 2), [LENS, SCOPE], [0, 1, 2], 3, 1), [LENS, SCOPE]));
    expect(store.runResults(long)).toEqual(before);
    expect(store.runResults(short)[0].layers[0].top_k.ids).toEqual(before[0].layers[0].top_k.ids.slice(0, 3));
  });

  it('finishing a run counts as done the examples another run stored meanwhile', () => {
    const { store } = freshStore();
    const waiting = store.createRun(newRun());
    store.setRunExamples(waiting, examples(0, 3));
    sweep(store, newRun(), examples(0, 3));
    expect(store.getRun(waiting).examplesDone).toBe(0);
    store.finishRun(waiting, { status: 'completed' });
    expect(store.getRun(waiting).examplesDone).toBe(3);
  });

  it('a run with a taken id, repeated technique ids or no layers is refused before anything is written', () => {
    const { store } = freshStore();
    const id = store.createRun(newRun({ id: 'fixed' }));
    expect(id).toBe('fixed');
    expect(() => store.createRun(newRun({ id: 'fixed' }))).toThrowError(expect.objectContaining({ code: 'argument_invalid', path: 'id' }));
    expect(() => store.createRun(newRun({ techniques: [LENS, LENS] }))).toThrowError(expect.objectContaining({ code: 'argument_invalid', path: 'techniques' }));
    expect(() => store.createRun(newRun({ layers: [] }))).toThrowError(expect.objectContaining({ code: 'argument_invalid', path: 'layers' }));
    expect(store.listRuns().map((r) => r.id)).toEqual(['fixed']);
  });

  it('a saved batch is refused whole when a row is not part of the run', () => {
    const { store } = freshStore();
    const id = store.createRun(newRun());
    store.setRunExamples(id, examples(0, 2));
    const rows = rowsFromResults(fakeResults(examples(0, 2), [LENS, SCOPE], [0, 1, 2, 3], 3), [LENS, SCOPE]);
    expect(() => store.saveBatch(id, rows)).toThrowError(expect.objectContaining({ code: 'argument_invalid' }));
    expect(store.runResults(id)).toEqual([]);
    expect(() => store.saveBatch('nope', [])).toThrowError(expect.objectContaining({ code: 'run_not_found' }));
  });

  it('an interrupted run resumes with exactly the examples that are not done', () => {
    const { store } = freshStore();
    const id = store.createRun(newRun());
    const exs = examples(0, 4);
    store.setRunExamples(id, exs);
    store.saveBatch(id, rowsFromResults(fakeResults(exs.slice(0, 2), [LENS, SCOPE], [0, 1, 2], 3), [LENS, SCOPE]));
    // Half an example (one technique only) is not done.
    store.saveBatch(id, rowsFromResults(fakeResults(exs.slice(2, 3), [LENS], [0, 1, 2], 3), [LENS]));
    store.finishRun(id, { status: 'cancelled', error: { code: 'cancelled', message: 'stopped by the user' } });
    expect(store.getRun(id)).toMatchObject({ status: 'cancelled', examplesDone: 2, error: { code: 'cancelled' } });
    store.resumeRun(id);
    expect(store.getRun(id)).toMatchObject({ status: 'running', error: null });
    expect(store.runExamples(id).filter((e) => !e.done).map((e) => e.ordinal)).toEqual([2, 3]);
  });

  it('the summary matches a hand computation and summarize() over the same results', () => {
    const { store } = freshStore();
    const exs = examples(0, 3);
    const results: ExampleResult[] = exs.map((e, i) => ({
      tokens: e.tokens, position: e.position, reference_top1: 7,
      layers: [{ layer: 0, technique: 'logit_lens', top1: [7, 8, 7][i], surprisal: [1, 2, 4][i], surprisal_paper: 0.5, top_k: { ids: [[7, 8, 7][i]], probs: [0.25] }, kl: null, rank: null, entropy: null }],
    }));
    const id = store.createRun(newRun({ techniques: [LENS], layers: [0], k: 1 }));
    store.setRunExamples(id, exs);
    store.saveBatch(id, rowsFromResults(results, [LENS]));
    // surprisal: values 1, 2, 4: mean 7/3, sample variance 7/3, half-width t(0.975, 2)·sqrt(7/3)/sqrt(3),
    // where with 2 degrees of freedom the t quantile has a closed form: (2p − 1)/sqrt(2p(1 − p)).
    const t2 = 0.95 / Math.sqrt(2 * 0.975 * 0.025);
    const half = t2 * Math.sqrt(7 / 3 / 3);
    const [s] = store.summary(id);
    expect(s.technique).toBe('logit_lens');
    expect(s.n).toBe(3);
    expect(s.surprisal.mean).toBeCloseTo(7 / 3, 12);
    expect(s.surprisal.low).toBeCloseTo(7 / 3 - half, 10);
    expect(s.surprisal.high).toBeCloseTo(7 / 3 + half, 10);
    // precision: 2 of 3, whose Wilson 95% interval is [0.2077, 0.9385] to four places (by hand from the formula).
    expect(s.precision.mean).toBeCloseTo(2 / 3, 12);
    expect(s.precision.low).toBeCloseTo(0.2077, 4);
    expect(s.precision.high).toBeCloseTo(0.9385, 4);
    expect(s.surprisalPaper).toEqual({ mean: 0.5, low: 0.5, high: 0.5 });
    expect(summarize(results)).toEqual([s]);
  });

  it('the summary of a larger run equals summarize() over its results, in run order', () => {
    const { store } = freshStore();
    const id = sweep(store, newRun(), examples(0, 7));
    const fromRows = summarize(store.runResults(id));
    const fromSql = store.summary(id);
    expect(fromSql.map((s) => [s.technique, s.layer, s.n])).toEqual([LENS, SCOPE].flatMap((t) => [0, 1, 2].map((l) => [t.id, l, 7])));
    fromSql.forEach((s, i) => {
      for (const m of ['precision', 'surprisal', 'surprisalPaper'] as const) {
        for (const f of ['mean', 'low', 'high'] as const) expect(s[m][f]).toBeCloseTo(fromRows[i][m][f]!, 10);
      }
    });
  });

  it('compare puts both runs side by side per technique and layer with the difference of means', () => {
    const { store } = freshStore();
    const a = sweep(store, newRun({ techniques: [LENS] }), examples(0, 4));
    const b = sweep(store, newRun({ techniques: [LENS, SCOPE], model: { ...MODEL, key: 'ckpt-b:float32:cpu' } }), examples(0, 4), 3);
    const rows = store.compare(a, b);
    expect(rows.map((r) => `${r.technique}@${r.layer}`)).toEqual(['logit_lens@0', 'logit_lens@1', 'logit_lens@2', 'logitscope@0', 'logitscope@1', 'logitscope@2']);
    const sa = store.summary(a);
    const sb = store.summary(b);
    expect(rows[1].diff!.surprisal).toBeCloseTo(sb[1].surprisal.mean - sa[1].surprisal.mean, 12);
    expect(rows[1].diff!.precision).toBeCloseTo(sb[1].precision.mean - sa[1].precision.mean, 12);
    expect(rows[4]).toEqual({ technique: 'logitscope', layer: 1, b: sb[4] });
  });

  it('listRuns filters by model, model path, dataset file and status, newest first', () => {
    const { store } = freshStore();
    const a = sweep(store, newRun({ name: 'a' }), examples(0, 2));
    const b = store.createRun(newRun({ name: 'b', model: { ...MODEL, key: 'ckpt-b:float32:cpu', path: '/models/gptj-b' }, files: ['/data/other/train.jsonl'] }));
    const c = store.createRun(newRun({ name: 'c', files: ['/data/x/0.jsonl', 'C:\\data\\val.jsonl.zst'] }));
    const ids = (f: Parameters<ResultStore['listRuns']>[0]) => store.listRuns(f).map((r) => r.id);
    expect(new Set(ids({}))).toEqual(new Set([a, b, c]));
    expect(ids({ modelKey: 'ckpt-b:float32:cpu' })).toEqual([b]);
    expect(ids({ modelPath: '/models/gptj-a' }).sort()).toEqual([a, c].sort());
    expect(ids({ status: 'completed' })).toEqual([a]);
    expect(ids({ dataset: 'val.jsonl.zst' }).sort()).toEqual([a, c].sort());
    expect(ids({ dataset: '/data/other/train.jsonl' })).toEqual([b]);
    expect(ids({ dataset: 'al.jsonl.zst' })).toEqual([]);
    expect(ids({ status: 'running', modelKey: MODEL.key })).toEqual([c]);
    expect(store.listRuns({ status: 'completed' })[0]).toMatchObject({ name: 'a', examplesDone: 2, examplesPlanned: 2, files: ['/data/pile/val.jsonl.zst'] });
  });

  it('a new database is created in WAL mode with the current schema version', () => {
    const { file } = freshStore();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('cache keys cover what decides a result and nothing else', () => {
    const key = exampleKey([50256, 1, 2], 1);
    // Pinned: a change to the key's encoding would silently orphan every cached result.
    expect(key).toBe('391d24659891d941c9c285cbc9be99eb5c1edcaa39aed578142f22ed48abcc4a');
    const variants = [
      exampleKey([50256, 1, 2], 2), // another position
      exampleKey([1, 2], 1), // no BOS
      exampleKey([50256, 1, 3], 1), // another token
      exampleKey([50256, 2, 1], 1), // the same tokens in another order
      exampleKey([50256, 1, 2, 0], 1), // one more token
    ];
    expect(new Set([key, ...variants]).size).toBe(1 + variants.length);
    expect(techniqueKey({ ...SCOPE, id: 'custom_3', prompt: 'renamed' })).toBe(techniqueKey(SCOPE));
    expect(techniqueKey({ ...SCOPE, promptTokens: [30] })).not.toBe(techniqueKey(SCOPE));
    expect(techniqueKey({ ...SCOPE, targetLayer: { kind: 'fixed', layer: 3 } })).not.toBe(techniqueKey(SCOPE));
    expect(techniqueKey(LENS)).not.toBe(techniqueKey(SCOPE));
    expect(modelKey({ identity: 'abc', computeDtype: 'float16', device: 'cuda' })).not.toBe(modelKey({ identity: 'abc', computeDtype: 'float32', device: 'cuda' }));
  });

  it('the default database lives in the platform data directory unless LOGITSCOPE_DB says otherwise', () => {
    const saved = { db: process.env.LOGITSCOPE_DB, xdg: process.env.XDG_DATA_HOME };
    try {
      process.env.LOGITSCOPE_DB = '/elsewhere/r.sqlite';
      expect(defaultDbPath()).toBe('/elsewhere/r.sqlite');
      delete process.env.LOGITSCOPE_DB;
      process.env.XDG_DATA_HOME = '/xdg';
      if (process.platform === 'linux') expect(defaultDbPath()).toBe('/xdg/logitscope-lab/results.sqlite');
    } finally {
      for (const [k, v] of [['LOGITSCOPE_DB', saved.db], ['XDG_DATA_HOME', saved.xdg]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
