import type { GptjTokenizer } from '../engine/tokenizer.ts';
import { mergeShards } from '../scale/merge.ts';
import type { TokenText } from '../store/export.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { Payload, Reply } from './contract.ts';
import { exportRun } from './export-service.ts';
import { showToken } from './format.ts';
import { exampleListView, exampleView, PAIRED_METHOD, resolveRunId, runView } from './views.ts';

/**
 * The review requests that read or edit the results cache and need neither a loaded model nor a
 * running sweep: listing, showing, comparing, exporting, renaming and merging runs. runs.delete
 * stays with the Lab (lab.ts), which cancels the run's sweep first.
 */
export type ReviewRequest =
  | 'runs.list' | 'runs.get' | 'runs.example' | 'runs.examples' | 'runs.bySource' | 'runs.compare' | 'runs.export' | 'runs.diff' | 'runs.update' | 'runs.merge';

/** What the review handlers use of the Lab. */
export interface Review {
  store: ResultStore;
  cacheRoot: string;
  /** The tokenizer of a run's model folder (the loaded engine's when it is that model); throws when unreadable. */
  tokenizerFor(modelDir: string): GptjTokenizer;
  /** Says runs.changed to every front. */
  changed(): void;
}

export function reviewHandlers(r: Review): { [K in ReviewRequest]: (payload: Payload<K>) => Promise<Reply<K>> } {
  const { store } = r;
  return {
    'runs.list': async (p) => store.listRuns(p),

    'runs.get': async (p) => runView(store, resolveRunId(store, p.runId), r.cacheRoot),

    'runs.example': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exampleView(store, runId, p.ordinal, r.tokenizerFor(store.getRun(runId).modelPath));
    },

    'runs.examples': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exampleListView(store, runId, p, r.tokenizerFor(store.getRun(runId).modelPath));
    },

    'runs.bySource': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return { technique: p.technique, sources: store.summaryBySource(runId, p.technique) };
    },

    'runs.compare': async (p) =>
      store.compare(resolveRunId(store, p.a, 'a'), resolveRunId(store, p.b, 'b')).map(({ technique, layer, a, b }) => ({ technique, layer, a, b })),

    'runs.export': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exportRun(store, runId, { format: p.format, out: p.out, text: tokenTextFor(r, store.getRun(runId).modelPath) });
    },

    'runs.diff': async (p) => {
      const a = resolveRunId(store, p.a, 'a');
      const b = resolveRunId(store, p.b, 'b');
      const rows = store.difference(a, b);
      return { a, b, sharedExamples: store.sharedExamples(a, b), rows, largest: store.largestDifferences(a, b), method: PAIRED_METHOD };
    },

    'runs.update': async (p) => {
      const runId = resolveRunId(store, p.runId);
      const item = store.updateRun(runId, { name: p.name === '' ? null : p.name, notes: p.notes === '' ? null : p.notes, tags: p.tags && [...new Set(p.tags)] });
      r.changed();
      return item;
    },

    'runs.merge': async (p) => {
      const report = mergeShards(store, p);
      r.changed();
      return report;
    },
  };
}

/**
 * The exports' token texts, by the run's own tokenizer; none (empty texts) when its checkpoint
 * folder is gone or unreadable, since the numbers must still export.
 */
function tokenTextFor(r: Review, modelDir: string): TokenText | undefined {
  let tokenizer: GptjTokenizer;
  try {
    tokenizer = r.tokenizerFor(modelDir);
  } catch {
    return undefined;
  }
  // A sweep's export names the same few thousand ids millions of times.
  const seen = new Map<number, string>();
  return (id) => {
    let t = seen.get(id);
    if (t === undefined) seen.set(id, (t = showToken(tokenizer.tokenString(id))));
    return t;
  };
}
