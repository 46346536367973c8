import { LogitscopeError } from '../errors.ts';
import type { ResolvedTechnique } from '../sweep/techniques.ts';
import type { RunDetail, RunListItem } from './types.ts';

/** The runs table's rows as review reads them, and their conversion to the public shapes. */

export interface RunRow {
  id: string;
  name: string | null;
  status: RunDetail['status'];
  created_at: string;
  updated_at: string;
  model_key: string;
  model_path: string;
  model_json: string;
  dataset_json: string;
  protocol_json: string;
  spec_json: string | null;
  techniques_json: string;
  layers_json: string;
  k: number;
  strategy: RunDetail['strategy'];
  code_version: string;
  examples_planned: number | null;
  timings_json: string;
  error_json: string | null;
  examples_done: number;
}

/** A run's row with its model key and progress. */
export const RUN_SELECT = `
  SELECT r.*, m.identity AS model_key,
    (SELECT count(*) FROM run_examples e WHERE e.run_id = r.id AND e.done) AS examples_done
  FROM runs r JOIN models m ON m.id = r.model_id`;

export function listItem(row: RunRow): RunListItem {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    modelKey: row.model_key,
    modelPath: row.model_path,
    files: JSON.parse(row.dataset_json).files,
    techniques: (JSON.parse(row.techniques_json) as ResolvedTechnique[]).map((t) => t.id),
    layers: JSON.parse(row.layers_json),
    k: row.k,
    examplesPlanned: row.examples_planned,
    examplesDone: row.examples_done,
  };
}

export function runDetail(row: RunRow): RunDetail {
  return {
    ...listItem(row),
    model: JSON.parse(row.model_json),
    dataset: JSON.parse(row.dataset_json),
    protocol: JSON.parse(row.protocol_json),
    spec: row.spec_json ? JSON.parse(row.spec_json) : null,
    resolvedTechniques: JSON.parse(row.techniques_json) as ResolvedTechnique[],
    strategy: row.strategy,
    codeVersion: row.code_version,
    timings: JSON.parse(row.timings_json),
    error: row.error_json ? JSON.parse(row.error_json) : null,
  };
}

export function runNotFound(runId: string): LogitscopeError {
  return new LogitscopeError('run_not_found', `there is no run "${runId}" in the results database`, runId);
}
