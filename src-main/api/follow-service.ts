/**
 * `runs.follow`: where one token stands in every cell of a stored example. The stored rows keep
 * only each cell's top-k, so the example is computed again, on the loaded model (it must be the
 * run's own), from its stored tokens and position, under the run's resolved techniques (its fitted
 * tuned lens included) and layers: the sweeps' fast path (Extractor), with the token tracked.
 */
import type { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import type { RunDetail } from '../store/types.ts';
import { Extractor } from '../sweep/extract.ts';
import { readoutsOf } from '../sweep/readout.ts';
import type { FollowView, Parsed } from './contract.ts';
import type { LabContext } from './handlers.ts';
import { checkRunModel } from './model-check.ts';
import { cellOf, resolveRunId, storedExample } from './views.ts';

export async function followInRun(lab: LabContext, p: Parsed<'runs.follow'>): Promise<FollowView> {
  const runId = resolveRunId(lab.store, p.runId);
  const run = lab.store.getRun(runId);
  const { example } = storedExample(lab.store, runId, p.ordinal);
  const engine = await acquireFor(lab, run);
  try {
    checkRunModel(engine.info, run, 'follow a token in its examples');
    const { dVocab } = engine.config;
    if (p.token >= dVocab) throw new LogitscopeError('token_out_of_range', `token id ${p.token} is outside this model's vocabulary (0..${dVocab - 1})`, 'token');
    // Only the tracked numbers are read: one top-k entry and no measures keep the pass lean.
    const [result] = await new Extractor(engine).extract({
      examples: [{ tokens: example.tokens, position: example.position }],
      techniques: run.resolvedTechniques,
      layers: run.layers,
      k: 1,
      measures: false,
      track: [p.token],
      names: [`example ${p.ordinal}`],
    });
    const text = (id: number) => engine.tokenizer.tokenString(id);
    return {
      ordinal: p.ordinal,
      token: { id: p.token, text: text(p.token) },
      // As every view's cell reads a followed token (rank 1 = the cell's top-1).
      cells: readoutsOf(result).map((r) => cellOf(r, text)).map((c) => ({ technique: c.technique, layer: c.layer, prob: c.followProb!, rank: c.followRank! })),
    };
  } finally {
    lab.engine.release();
  }
}

/** The loaded engine, leased; with none loaded, the refusal names the model that would answer. */
async function acquireFor(lab: LabContext, run: RunDetail): Promise<Engine> {
  try {
    return await lab.engine.acquire();
  } catch (e) {
    if (e instanceof LogitscopeError && e.code === 'model_not_loaded') {
      throw new LogitscopeError('model_not_loaded', `no model is loaded: load ${run.modelPath} (the model run ${run.id} was computed with) to follow a token in its examples`, 'model');
    }
    throw e;
  }
}
