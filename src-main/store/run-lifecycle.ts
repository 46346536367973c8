import { randomUUID } from 'node:crypto';
import { LogitscopeError } from '../errors.ts';
import { techniqueKey } from './keys.ts';
import { markComplete } from './row-writes.ts';
import { checkNewRun, DELETE_UNSHARED_RESULTS, THIS_PROCESS, type RunShape } from './run-rows.ts';
import { DELETE_UNSHARED_TRACKED } from './tracked.ts';
import type { SqliteFile } from './sqlite.ts';
import type { NewRun, RunEnd } from './types.ts';

/**
 * A run's life in the runs table: created running and owned by this process, ended, reopened for a
 * resume, deleted. Who may resume or delete (the owner's liveness) is the facade's (result-store.ts).
 */

/** Inserts the run with its techniques and layers, running and owned by this process; its id. */
export function insertRun(db: SqliteFile, r: NewRun): string {
  checkNewRun(r);
  const id = r.id ?? randomUUID();
  if (db.get('SELECT 1 FROM runs WHERE id = ?', id)) throw new LogitscopeError('argument_invalid', `a run with id "${id}" already exists`, 'id');
  const now = new Date().toISOString();
  db.transaction(() => {
    const producer = db.get<{ id: number }>('INSERT INTO producers (run_id) VALUES (?) RETURNING id', id)!.id;
    const modelId = db.get<{ id: number }>(
      'INSERT INTO models (identity) VALUES (?) ON CONFLICT (identity) DO UPDATE SET identity = excluded.identity RETURNING id',
      r.model.key,
    )!.id;
    db.run(
      `INSERT INTO runs (id, name, status, created_at, updated_at, model_id, model_path, model_json, dataset_json, protocol_json, spec_json,
         techniques_json, layers_json, k, strategy, code_version, examples_planned, owner_pid, owner_host, owner_token, heartbeat_at, producer, owns_rows)
       VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id, r.name ?? null, now, now, modelId, r.model.path, JSON.stringify(r.model.info), JSON.stringify({ files: r.files, ...r.datasetStats }),
      JSON.stringify(r.protocol), r.spec ? JSON.stringify(r.spec) : null, JSON.stringify(r.techniques), JSON.stringify(r.layers),
      r.k, r.strategy, r.codeVersion, r.examplesPlanned ?? null, THIS_PROCESS.pid, THIS_PROCESS.host, THIS_PROCESS.token, Date.now(),
      producer, r.ownsRows ? 1 : 0,
    );
    r.techniques.forEach((t, ordinal) => {
      const techniqueId = db.get<{ id: number }>(
        'INSERT INTO techniques (key, json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id',
        techniqueKey(t), JSON.stringify(t),
      )!.id;
      db.run('INSERT INTO run_techniques (run_id, ordinal, name, technique_id) VALUES (?, ?, ?, ?)', id, ordinal, t.id, techniqueId);
    });
    for (const layer of new Set(r.layers)) db.run('INSERT INTO run_layers (run_id, layer) VALUES (?, ?)', id, layer);
  });
  return id;
}

/**
 * Records how the run ended. Progress is brought up to date first: examples whose results another
 * run saved meanwhile were taken from the cache without a saveBatch of this run to mark them done.
 */
export function endRun(db: SqliteFile, runId: string, shape: RunShape, end: RunEnd): void {
  db.transaction(() => {
    const pending = db.all<{ id: number }>('SELECT DISTINCT example_id AS id FROM run_examples WHERE run_id = ? AND NOT done', runId);
    markComplete(db, runId, shape, pending.map((e) => e.id));
    db.run(
      `UPDATE runs SET status = ?, updated_at = ?, timings_json = json_patch(timings_json, ?), error_json = ? WHERE id = ?`,
      end.status, new Date().toISOString(), JSON.stringify(end.timings ?? {}), end.error ? JSON.stringify(end.error) : null, runId,
    );
  });
}

/** Marks the run running again, owned by this process (inside the caller's transaction, after its liveness check). */
export function reopenRun(db: SqliteFile, runId: string): void {
  db.run(
    `UPDATE runs SET status = 'running', error_json = NULL, updated_at = ?, owner_pid = ?, owner_host = ?, owner_token = ?, heartbeat_at = ? WHERE id = ?`,
    new Date().toISOString(), THIS_PROCESS.pid, THIS_PROCESS.host, THIS_PROCESS.token, Date.now(), runId,
  );
}

/**
 * Deletes the run and the results and examples no other run refers to (inside the caller's
 * transaction, after its liveness check); rows another run of the same model uses stay.
 */
export function removeRun(db: SqliteFile, runId: string, shape: RunShape): void {
  const exampleIds = db.all<{ id: number }>('SELECT DISTINCT example_id AS id FROM run_examples WHERE run_id = ?', runId);
  db.run(DELETE_UNSHARED_RESULTS, { model: shape.modelId, run: runId });
  db.run(DELETE_UNSHARED_TRACKED, { model: shape.modelId, run: runId });
  db.run('DELETE FROM runs WHERE id = ?', runId);
  for (const { id } of exampleIds) {
    db.run('DELETE FROM examples WHERE id = ? AND NOT EXISTS (SELECT 1 FROM run_examples WHERE example_id = ?)', id, id);
  }
}
