/**
 * A request checked against the model it will run on, after its schema and before any work: the
 * one place that knows which layers a model has. Every path that computes runs it first (a sweep
 * here or on devices, whose children each load the model; an extraction; a lens fit, which is part
 * of a sweep), so a bad layer costs no dataset read, no child process and no model load. The
 * engine's own layer checks stay as internal invariants behind this one.
 */
import type { LoadedModel } from '../engine/worker-protocol.ts';
import { type Issue, issuesError, LogitscopeError } from '../errors.ts';
import { ranges } from '../protocol/shards.ts';
import { modelKey } from '../store/keys.ts';
import type { TechniqueChoice } from './contract.ts';

/** What of a model the checks need: known from its config.json alone, before any load. */
export interface ModelShape {
  nLayers: number;
}

/** The fields the checks read; a request without one (a sweep has no position) skips its check. */
export interface ModelBoundRequest {
  layers?: readonly number[] | null;
  techniques?: readonly TechniqueChoice[];
}

/** Every problem of the request against this model, each with its code and path; none = it fits. */
export function checkAgainstModel(model: ModelShape, request: ModelBoundRequest): Issue[] {
  const last = model.nLayers - 1;
  const issues: Issue[] = [];
  const past = (request.layers ?? []).filter((l) => l > last);
  if (past.length > 0) {
    issues.push({
      code: 'layer_out_of_range',
      path: 'layers',
      message: `layer${past.length > 1 ? 's' : ''} ${ranges([...past].sort((a, b) => a - b))} past the last of this model (its layers are 0..${last}, and -1, the embeddings)`,
    });
  }
  (request.techniques ?? []).forEach((c, i) => {
    if (c.id === 'custom' && c.targetLayer?.kind === 'fixed' && c.targetLayer.layer > last) {
      issues.push({ code: 'layer_out_of_range', path: `techniques.${i}.targetLayer.layer`, message: `target layer ${c.targetLayer.layer} is past the last (${last}) of this model` });
    }
  });
  return issues;
}

/** Throws every issue (of the model check and the caller's own checks) as one coded error; nothing when there are none. */
export function refuseIssues(request: string, issues: readonly Issue[]): void {
  if (issues.length > 0) throw issuesError(request, issues);
}

/**
 * A stored run's numbers are made again only by the model that made them: the same model key
 * (checkpoint, compute dtype and device), since another dtype or device can flip a top-1. `toDo`
 * ends the advice ("load that model to …").
 */
export function checkRunModel(loaded: Pick<LoadedModel, 'identity' | 'computeDtype' | 'device'>, run: { id: string; modelKey: string; modelPath: string }, toDo: string): void {
  if (run.modelKey !== modelKey(loaded)) {
    throw new LogitscopeError('model_mismatch', `run ${run.id} was computed with another model, dtype or device (${run.modelPath}); load that model to ${toDo}`, 'runId');
  }
}
