/**
 * Results-cache throughput at GPT-J scale: saving a 2000-example × 28-layer × 3-technique sweep
 * in batches of 32 examples (k = 10), then loading it back for review, resuming it from the cache,
 * exporting and deleting it. Run with `npx tsx bench/store-bench.ts [dir]`; the database goes in a
 * temporary folder under `dir` (default: the OS temp dir), so pass a path on the disk you care about.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExampleResult } from '../src-main/protocol/results.ts';
import type { ResolvedTechnique } from '../src-main/protocol/techniques.ts';
import { exportCsv, exportJson, exportParquet } from '../src-main/store/export.ts';
import { exampleKey, techniqueKey } from '../src-main/store/keys.ts';
import { ResultStore } from '../src-main/store/result-store.ts';
import { rowsFromResults } from '../src-main/store/rows.ts';
import { summarize } from '../src-main/sweep/intervals.ts';
import type { RunExampleInput } from '../src-main/store/types.ts';

const EXAMPLES = 2000;
const BATCH = 32;
const LAYERS = Array.from({ length: 28 }, (_, l) => l);
const K = 10;
const TECHNIQUES: ResolvedTechnique[] = [
  { id: 'logit_lens', kind: 'logit_lens' },
  { id: 'patchscope', kind: 'patchscope', prompt: 'cat -> cat\n1135 -> 1135\nhello -> hello\n?', promptTokens: [50256, 9246, 4613, 3797, 198, 1157, 2327, 4613, 1367, 2327, 198, 31373, 4613, 23748, 198, 30], targetLayer: { kind: 'same' } },
  { id: 'logitscope', kind: 'patchscope', prompt: '?', promptTokens: [50256, 30], targetLayer: { kind: 'same' } },
];
const CELLS = EXAMPLES * LAYERS.length * TECHNIQUES.length;

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const out = fn();
  return [out, performance.now() - start];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const out = await fn();
  return [out, performance.now() - start];
}

/** Pile-like examples: ~200 tokens each, one position. */
const examples: RunExampleInput[] = Array.from({ length: EXAMPLES }, (_, i) => {
  const tokens = [50256, ...Array.from({ length: 150 + (i % 100) }, (_, j) => (i * 7919 + j * 104729) % 50257)];
  return { ordinal: i, recordIndex: i, source: 'Pile-CC', text: 'x'.repeat(800), tokens, position: (i * 31) % tokens.length };
});

function fakeBatch(exs: RunExampleInput[]): ExampleResult[] {
  return exs.map((e) => ({
    tokens: e.tokens, position: e.position, reference_top1: e.tokens[e.position],
    layers: TECHNIQUES.flatMap((t) => LAYERS.map((layer) => {
      const ids = Array.from({ length: K }, (_, j) => (e.ordinal * 13 + layer * 17 + j) % 50400);
      return { layer, technique: t.id, top1: ids[0], surprisal: Math.random() * 10, surprisal_paper: Math.random() * 10, top_k: { ids, probs: ids.map((_, j) => 0.5 / (j + 1)) }, kl: Math.random() * 5, rank: layer, entropy: Math.random() * 10 };
    })),
  }));
}

const dir = fs.mkdtempSync(path.join(process.argv[2] ?? os.tmpdir(), 'store-bench-'));
const file = path.join(dir, 'results.sqlite');
try {
  let store = ResultStore.open(file);
  const run = {
    model: { key: 'bench:float16:cuda', path: '/models/gpt-j-6b', info: {} }, files: ['/data/pile/val.jsonl.zst'],
    protocol: { preset: 'logitscope' as const, poolStart: 0, poolEnd: 2000, filter: {}, shuffleSeed: null, evalStart: 0, evalEnd: null, bos: true, positionSeed: 1 },
    techniques: TECHNIQUES, layers: LAYERS, k: K, strategy: 'fast' as const, codeVersion: 'bench',
  };
  const id = store.createRun(run);
  const [, setMs] = time(() => store.setRunExamples(id, examples));

  const batches = Array.from({ length: EXAMPLES / BATCH + 1 }, (_, b) => examples.slice(b * BATCH, (b + 1) * BATCH)).filter((b) => b.length > 0);
  let saveMs = 0;
  let convertMs = 0;
  for (const exs of batches) {
    const [rows, c] = time(() => rowsFromResults(fakeBatch(exs), TECHNIQUES));
    const [, s] = time(() => store.saveBatch(id, rows));
    convertMs += c;
    saveMs += s;
  }
  store.finishRun(id, { status: 'completed' });
  store.close();

  const [reopened, openMs] = time(() => ResultStore.open(file)); // includes PRAGMA quick_check
  store = reopened;
  const [results, loadMs] = time(() => store.runResults(id));
  const [, summaryMs] = time(() => store.summary(id));
  const [, summarizeMs] = time(() => summarize(results));
  const [hits, lookupMs] = time(() =>
    store.lookup({ modelKey: run.model.key, exampleKeys: examples.map((e) => exampleKey(e.tokens, e.position)), techniqueKeys: TECHNIQUES.map(techniqueKey), layers: LAYERS, k: K }),
  );
  const [, listMs] = time(() => store.listRuns());
  const [, jsonMs] = time(() => JSON.stringify(exportJson(store, id)).length);
  const [csvRows, csvMs] = await timeAsync(() => exportCsv(store, id, path.join(dir, 'run.csv')));
  const [, parquetMs] = await timeAsync(() => exportParquet(store, id, path.join(dir, 'run.parquet')));
  const dbBytes = fs.statSync(file).size + (fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  const [, deleteMs] = time(() => store.deleteRun(id));
  store.close();

  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const line = (label: string, ms: number, extra = '') => console.log(`${label.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms ${extra}`);
  console.log(`${EXAMPLES} examples × ${LAYERS.length} layers × ${TECHNIQUES.length} techniques = ${CELLS} rows, k = ${K}, batches of ${BATCH} examples (${BATCH * LAYERS.length * TECHNIQUES.length} rows)\n`);
  line('setRunExamples (2000 examples)', setMs);
  line('saveBatch, all batches', saveMs, `→ ${Math.round(CELLS / (saveMs / 1000))} rows/s, ${(saveMs / batches.length).toFixed(1)} ms per batch`);
  line('rowsFromResults, all batches (not in the above)', convertMs);
  line('open (quick_check of the whole file)', openMs);
  line('runResults (review load)', loadMs, `→ ${results.length} examples`);
  line('summary (SQL aggregate)', summaryMs);
  line('summarize(runResults) (same numbers in JS)', summarizeMs);
  line('runResults + summary', loadMs + summaryMs, `(summary alone is ${((loadMs + summarizeMs) / summaryMs).toFixed(1)}× faster than summarize(runResults))`);
  line('lookup of the whole run (resume from cache)', lookupMs, `→ ${hits.size} hits`);
  line('listRuns', listMs);
  line('exportJson + JSON.stringify', jsonMs);
  line('exportCsv', csvMs, `→ ${csvRows} rows, ${mb(fs.statSync(path.join(dir, 'run.csv')).size)}`);
  line('exportParquet', parquetMs, `→ ${mb(fs.statSync(path.join(dir, 'run.parquet')).size)}`);
  line('deleteRun (with garbage collection)', deleteMs);
  console.log(`\ndatabase size: ${mb(dbBytes)} (${(dbBytes / CELLS).toFixed(0)} bytes per row, examples' tokens and texts included)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
