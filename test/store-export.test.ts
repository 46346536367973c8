import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parquetReadObjects } from 'hyparquet';
import { exportSummary } from '../src-main/sweep/export-record.ts';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';
import { rowsFromResults } from '../src-main/store/rows.ts';
import { INTERVAL_METHODS } from '../src-main/sweep/intervals.ts';
import { exportCsv, exportJson, exportParquet, TABLE_COLUMNS } from '../src-main/store/export.ts';
import { parseCsv } from './fixtures/csv.ts';
import { asStored, examples, fakeResults, freshStore, LENS, MODEL, newRun, PROTOCOL, SCOPE, sweep } from './fixtures/store-runs.ts';

describe('exports', () => {
  it('the JSON export has the export record fields, techniques with prompt tokens, and summaries', () => {
    const { store } = freshStore();
    const exs = examples(0, 3);
    const id = sweep(store, newRun(), exs);
    const record = JSON.parse(JSON.stringify(exportJson(store, id)));
    expect(Object.keys(record)).toEqual(['model', 'techniques', 'conventions', 'protocol', 'dataset', 'status', 'run', 'summary', 'parity', 'examples']);
    expect(record.model).toEqual(MODEL.info);
    expect(record.techniques).toEqual({ logit_lens: {}, logitscope: { prompt: '?', prompt_tokens: [50256, 30], target_layer: 'same' } });
    expect(record.protocol).toEqual(PROTOCOL);
    expect(record.status).toBe('completed');
    expect(record.run).toMatchObject({ id, k: 3, layers: [0, 1, 2], examples_done: 3, timings: { extract: 12 } });
    expect(Object.keys(record.examples[0])).toEqual(['record_index', 'source', 'tokens', 'position', 'reference_top1', 'layers']);
    expect(Object.keys(record.examples[0].layers[0])).toEqual(['layer', 'hook', 'technique', 'top1', 'surprisal', 'surprisal_paper', 'kl', 'rank', 'entropy', 'top_k']);
    expect(Object.keys(record.conventions)).toEqual(expect.arrayContaining(['kl', 'rank', 'entropy']));
    expect(record.examples[0].layers.map((l: { layer: number; hook: string }) => [l.layer, l.hook])).toContainEqual([2, 'blocks.2.hook_resid_post']);
    const withoutHooks = record.examples.map(({ record_index, source, ...e }: { record_index: number; source: string; layers: { hook: string }[] }) => ({
      ...e,
      layers: e.layers.map(({ hook, ...l }) => l),
    }));
    expect(withoutHooks).toEqual(asStored(fakeResults(exs, [LENS, SCOPE], [0, 1, 2], 3)));
    expect(record.summary.ci_method).toEqual(INTERVAL_METHODS);
    expect(record.summary.rows).toEqual(JSON.parse(JSON.stringify(exportSummary(store.summary(id)).rows)));
    expect(record.summary.rows).toHaveLength(6);
    expect(record.summary.rows.every((r: { n: number }) => r.n === 3)).toBe(true);
  });

  it('the CSV export has one row per example, technique and layer, quoted where needed', async () => {
    const { store, dir } = freshStore();
    const odd: ResolvedTechnique = { ...SCOPE, id: 'odd, "quoted" id' };
    const id = sweep(store, newRun({ techniques: [LENS, odd] }), examples(0, 4));
    const out = path.join(dir, 'run.csv');
    expect(await exportCsv(store, id, out)).toBe(4 * 2 * 3);
    const lines = fs.readFileSync(out, 'utf8').split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe(TABLE_COLUMNS.join(','));
    expect(lines).toHaveLength(1 + 24);
    const oddLine = lines.find((l) => l.includes('"odd, ""quoted"" id"'))!;
    const fields = oddLine.replace('"odd, ""quoted"" id"', 'ODD').split(',');
    expect(fields).toHaveLength(TABLE_COLUMNS.length);
    expect(fields[0]).toBe(id);
    const at = (column: (typeof TABLE_COLUMNS)[number]) => fields[TABLE_COLUMNS.indexOf(column)];
    expect(at('correct')).toBe(String(Number(at('top1') === at('reference_top1'))));
    expect(at('hook')).toBe(`blocks.${at('layer')}.hook_resid_post`);
    expect(at('top_k_ids').split(' ')).toHaveLength(3);
    expect(at('top_k_texts')).toBe('[]'); // no tokenizer given: no texts, rather than made-up ones
    expect(fs.existsSync(`${out}.partial`)).toBe(false);
    // To a stream: the same bytes, and the stream is left open for the caller.
    const chunks: Buffer[] = [];
    const sink = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
    expect(await exportCsv(store, id, sink)).toBe(24);
    expect(sink.writableEnded).toBe(false);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(fs.readFileSync(out, 'utf8'));
  });

  it('each stored row keeps its own reference: the CSV, the summary and the inspector judge a row against it, not its neighbour\'s', async () => {
    const { store, dir } = freshStore();
    const run = newRun({ techniques: [LENS], layers: [0, 1] });
    const id = store.createRun(run);
    store.setRunExamples(id, examples(0, 1));
    const [hit, miss] = rowsFromResults(fakeResults(examples(0, 1), [LENS], [0, 1], 3), [LENS]);
    // Written by hand (no sweep stores this): layer 0 matches its reference, layer 1 names another.
    store.saveBatch(id, [{ ...hit, referenceTop1: hit.top1 }, { ...miss, referenceTop1: miss.top1 + 1 }]);
    const out = path.join(dir, 'run.csv');
    await exportCsv(store, id, out);
    const [header, ...rows] = parseCsv(fs.readFileSync(out, 'utf8'));
    const col = (name: string) => rows.map((r) => r[header.indexOf(name)]);
    expect(col('reference_top1')).toEqual([String(hit.top1), String(miss.top1 + 1)]);
    expect(col('correct')).toEqual(['1', '0']);
    expect(store.summary(id).map((s) => s.precision.mean)).toEqual([1, 0]);
    expect(store.findExamples(id, { filter: { technique: 'logit_lens', layer: 1 }, offset: 0, limit: 1 }).rows[0].layers.map((l) => l.correct)).toEqual([true, false]);
  });

  it('the Parquet export reads back with the same rows as the CSV', async () => {
    const { store, dir } = freshStore();
    const odd: ResolvedTechnique = { ...SCOPE, id: 'odd, "quoted" id' };
    const id = sweep(store, newRun({ techniques: [LENS, odd] }), examples(0, 3));
    const out = path.join(dir, 'run.parquet');
    expect(await exportParquet(store, id, out)).toBe(3 * 2 * 3);
    const buf = fs.readFileSync(out);
    const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) });
    expect(rows).toHaveLength(18);
    const [e0] = asStored(fakeResults(examples(0, 1), [LENS, odd], [0, 1, 2], 3));
    expect(rows[0]).toEqual({
      run_id: id, example: 0, record_index: 0, position: e0.position, reference_top1: e0.reference_top1, technique: 'logit_lens', layer: 0, hook: 'blocks.0.hook_resid_post',
      top1: e0.layers[0].top1, correct: e0.layers[0].top1 === e0.reference_top1, surprisal: e0.layers[0].surprisal,
      surprisal_paper: e0.layers[0].surprisal_paper, kl: e0.layers[0].kl, rank: e0.layers[0].rank, entropy: e0.layers[0].entropy, top_k_ids: e0.layers[0].top_k.ids, top_k_probs: e0.layers[0].top_k.probs, top_k_padding: [],
      technique_detail: '', reference_top1_text: '', top1_text: '', top_k_texts: [],
      // This run follows no record token.
      track_token: null, track_logprob: null, track_rank: null,
    });

    const csv = path.join(dir, 'run.csv');
    await exportCsv(store, id, csv);
    const [header, ...lines] = parseCsv(fs.readFileSync(csv, 'utf8'));
    expect(header).toEqual([...TABLE_COLUMNS]);
    // CSV fields are text: typed back by column, every row must equal the Parquet row in the same place.
    const typed = lines.map((fields) =>
      Object.fromEntries(
        TABLE_COLUMNS.map((c, i) => {
          const f = fields[i];
          if (c === 'run_id' || c === 'technique' || c === 'hook' || c === 'technique_detail' || c === 'reference_top1_text' || c === 'top1_text') return [c, f];
          if (c === 'top_k_texts') return [c, JSON.parse(f)];
          if (c === 'correct') return [c, f === '1'];
          if (c === 'kl' || c === 'rank' || c === 'entropy' || c.startsWith('track_')) return [c, f === '' ? null : Number(f)];
          if (c === 'top_k_ids' || c === 'top_k_probs' || c === 'top_k_padding') return [c, f === '' ? [] : f.split(' ').map(Number)];
          return [c, Number(f)];
        }),
      ),
    );
    expect(typed).toEqual(rows);
    expect(typed.some((r) => r.technique === odd.id)).toBe(true);
  });

  it('with the token texts, every id in the CSV has its text beside it, lists as JSON arrays (texts may hold commas and spaces)', async () => {
    const { store, dir } = freshStore();
    const id = sweep(store, newRun({ techniques: [LENS] }), examples(0, 2));
    const text = (tokenId: number) => (tokenId % 2 ? `␣t${tokenId}, "x"` : `t${tokenId}`);
    const out = path.join(dir, 'texts.csv');
    await exportCsv(store, id, out, text);
    const [header, ...rows] = parseCsv(fs.readFileSync(out, 'utf8'));
    const col = (name: (typeof TABLE_COLUMNS)[number]) => header.indexOf(name);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r[col('top1_text')]).toBe(text(Number(r[col('top1')])));
      expect(r[col('reference_top1_text')]).toBe(text(Number(r[col('reference_top1')])));
      expect(JSON.parse(r[col('top_k_texts')])).toEqual(r[col('top_k_ids')].split(' ').map((i) => text(Number(i))));
    }
  });

  it('rows without measures (stored before they existed) export empty CSV fields, Parquet nulls, JSON nulls and a summary with n_measured 0', async () => {
    const { store, dir } = freshStore();
    const exs = examples(0, 2);
    const id = store.createRun(newRun({ techniques: [LENS], layers: [0], k: 3 }));
    store.setRunExamples(id, exs);
    const unmeasured = fakeResults(exs, [LENS], [0], 3).map((e) => ({ ...e, layers: e.layers.map((l) => ({ ...l, kl: null, rank: null, entropy: null })) }));
    store.saveBatch(id, rowsFromResults(unmeasured, [LENS]));
    const csv = path.join(dir, 'old.csv');
    await exportCsv(store, id, csv);
    const [header, ...lines] = parseCsv(fs.readFileSync(csv, 'utf8'));
    for (const line of lines) for (const c of ['kl', 'rank', 'entropy']) expect(line[header.indexOf(c)]).toBe('');
    const pq = path.join(dir, 'old.parquet');
    await exportParquet(store, id, pq);
    const buf = fs.readFileSync(pq);
    const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) });
    expect(rows.map((r) => [r.kl, r.rank, r.entropy])).toEqual([[null, null, null], [null, null, null]]);
    const record = JSON.parse(JSON.stringify(exportJson(store, id)));
    expect(record.examples[0].layers[0]).toMatchObject({ kl: null, rank: null, entropy: null });
    expect(record.summary.rows[0]).toMatchObject({ n: 2, n_measured: 0, kl: null, rank: null, entropy: null });
  });

  it('exporting a run that does not exist fails before any file is created', async () => {
    const { store, dir } = freshStore();
    const out = path.join(dir, 'none.csv');
    await expect(exportCsv(store, 'nope', out)).rejects.toMatchObject({ code: 'run_not_found' });
    expect(fs.existsSync(out)).toBe(false);
  });
});
