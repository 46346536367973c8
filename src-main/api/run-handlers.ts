/** `runs.*`: the stored runs, read, compared, exported, edited, merged and deleted; `runs.follow` computes an example again on the loaded model. */
import { mergeShards } from '../scale/merge.ts';
import { exportRun } from './export-service.ts';
import { followInRun } from './follow-service.ts';
import type { Handlers, LabContext, RequestsOf } from './handlers.ts';
import { exampleListView, exampleView, resolveRunId, runView } from './views.ts';
import { commitmentView, diffRuns, diffTechniques } from './compare-service.ts';

export function runHandlers(lab: LabContext): Handlers<RequestsOf<'runs'>> {
  const { store, tokenizers } = lab;
  const changed = <T>(result: T): T => {
    lab.emit('runs.changed', {});
    return result;
  };
  return {
    'runs.list': async (p) => store.listRuns(p),

    'runs.get': async (p) => runView(store, resolveRunId(store, p.runId), lab.cacheRoot),

    'runs.example': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exampleView(store, runId, p.ordinal, tokenizers.of(store.getRun(runId).modelPath));
    },

    'runs.follow': async (p) => followInRun(lab, p),

    'runs.examples': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exampleListView(store, runId, p, tokenizers.of(store.getRun(runId).modelPath));
    },

    'runs.bySource': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return { technique: p.technique, sources: store.summaryBySource(runId, p.technique) };
    },

    'runs.compare': async (p) =>
      store.compare(resolveRunId(store, p.a, 'a'), resolveRunId(store, p.b, 'b')).map(({ technique, layer, a, b }) => ({ technique, layer, a, b })),

    'runs.export': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return exportRun(store, runId, { format: p.format, out: p.out, text: tokenizers.texts(store.getRun(runId).modelPath) });
    },

    'runs.diff': async (p) => diffRuns(store, resolveRunId(store, p.a, 'a'), resolveRunId(store, p.b, 'b')),

    'runs.diffTechniques': async (p) => diffTechniques(store, resolveRunId(store, p.runId), p.a, p.b),

    'runs.commitment': async (p) => commitmentView(store, resolveRunId(store, p.runId)),

    'runs.update': async (p) => {
      const runId = resolveRunId(store, p.runId);
      return changed(store.updateRun(runId, { name: p.name === '' ? null : p.name, notes: p.notes === '' ? null : p.notes, tags: p.tags && [...new Set(p.tags)] }));
    },

    'runs.merge': async (p) => changed(mergeShards(store, p)),

    'runs.delete': async (p) => {
      const runId = resolveRunId(store, p.runId);
      // A run still computing here is cancelled first (its finished batches are kept until the
      // delete), so the sweep never writes into rows that are being removed.
      await lab.runs.stop(runId);
      store.deleteRun(runId);
      return changed({ deleted: true });
    },
  };
}
