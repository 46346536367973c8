import { LogitscopeError } from '../errors.ts';
import type { ExampleResult } from '../protocol/results.ts';
import { exampleResultOf, type Readout } from '../sweep/readout.ts';
import type { SweepCache } from '../sweep/run-sweep.ts';
import { techniqueKey } from './keys.ts';
import type { ResultStore } from './result-store.ts';
import { rowsFromResults } from './rows.ts';

/**
 * A stored run as the sweep loop's cache (run-sweep.ts SweepCache). Ordinals are the run's
 * (setRunExamples), which must be the indices of the sweep plan's examples. Lookups search every
 * run of the same model, so a sweep that repeats or extends an earlier one computes only what is new.
 * A run that owns its rows (a recompute: NewRun.ownsRows) finds only rows it computed itself, so it
 * computes every row once (a resume continues where it stopped) and stores them beside the others'
 * rows, never over them (generations.ts).
 */
export function runSweepCache(store: ResultStore, runId: string): SweepCache {
  const run = store.getRun(runId);
  const examples = new Map(store.runExamples(runId).map((e) => [e.ordinal, e]));
  // Several technique ids can share a key (two custom prompts with the same tokens): each gets the rows.
  const idsByKey = new Map<string, string[]>();
  for (const t of run.resolvedTechniques) {
    const key = techniqueKey(t);
    idsByKey.set(key, [...(idsByKey.get(key) ?? []), t.id]);
  }
  const exampleOf = (ordinal: number) => {
    const e = examples.get(ordinal);
    if (!e) throw new LogitscopeError('argument_invalid', `ordinal ${ordinal} is not an example of run ${runId}; call setRunExamples with the sweep's examples first`, 'ordinal');
    return e;
  };

  return {
    lookup(ordinals) {
      const wanted = ordinals.map(exampleOf);
      const hits = store.lookup({
        modelKey: run.modelKey, exampleKeys: wanted.map((e) => e.exampleKey), techniqueKeys: [...idsByKey.keys()], layers: run.layers, k: run.k,
        ...(run.ownsRows && { ownedBy: runId }),
      });
      // An example that follows a token needs its tracked row too: a cell without one is computed again.
      const following = wanted.flatMap((e) => (e.track === undefined ? [] : [{ exampleKey: e.exampleKey, token: e.track }]));
      const tracked = following.length === 0 ? new Map() : store.lookupTracked({
        modelKey: run.modelKey, wanted: following, techniqueKeys: [...idsByKey.keys()], layers: run.layers, ...(run.ownsRows && { ownedBy: runId }),
      });
      const found = new Map<number, ExampleResult>();
      for (const e of wanted) {
        const readouts: Readout[] = [];
        for (const [key, ids] of idsByKey) {
          for (const layer of run.layers) {
            const row = hits.get(`${e.exampleKey}|${key}|${layer}`);
            const t = e.track === undefined ? undefined : tracked.get(`${e.exampleKey}|${e.track}|${key}|${layer}`);
            if (!row || (e.track !== undefined && !t)) continue;
            for (const technique of ids) readouts.push({ ...row, technique, ...(t && { tracked: t }) });
          }
        }
        if (readouts.length > 0) found.set(e.ordinal, exampleResultOf(e, readouts));
      }
      return found;
    },
    save(batch) {
      store.saveBatch(runId, rowsFromResults(batch.map((b) => ({ ...b.result, layers: b.computed })), run.resolvedTechniques));
    },
  };
}
