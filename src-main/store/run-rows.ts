import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { LogitscopeError } from '../errors.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import type { SqliteFile } from './sqlite.ts';
import type { NewRun, RunDetail, RunEdit, RunListItem, RunStatus } from './types.ts';

/**
 * The runs table: its rows as review reads them and their conversion to the public shapes, and
 * who owns a running run (THIS_PROCESS, the heartbeat, runStatus).
 */

export interface RunRow {
  id: string;
  name: string | null;
  /** As stored: never 'interrupted' (see runStatus). */
  status: RunStatus;
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
  owner_pid: number | null;
  owner_host: string | null;
  owner_token: string | null;
  heartbeat_at: number | null;
  notes: string | null;
  tags_json: string;
  examples_done: number;
  producer: number;
  owns_rows: number;
}

/**
 * This process as a run's owner. The token, new in every process, is what the heartbeat matches:
 * once another process resumes a run (it looked dead), this one's beats no longer touch it.
 */
export const THIS_PROCESS = { pid: process.pid, host: os.hostname(), token: randomUUID() } as const;

/** What deciding whether a running run's owner is alive needs, read once per query. */
export interface Liveness {
  now: number;
  /** A heartbeat older than this means the owner is gone, whatever its host. */
  staleAfterMs: number;
  /** Runs this store is computing now: running, whatever their heartbeat says. */
  computing: ReadonlySet<string>;
}

/**
 * The status to show: a stored 'running' is 'interrupted' when its owner is gone — on this host
 * its process no longer exists, or on any host its heartbeat is older than staleAfterMs (another
 * host's pids cannot be checked, and its clock is trusted to within that margin).
 */
export function runStatus(row: RunRow, live: Liveness): RunStatus {
  if (row.status !== 'running' || live.computing.has(row.id)) return row.status;
  if (row.heartbeat_at === null || live.now - row.heartbeat_at > live.staleAfterMs) return 'interrupted';
  // Our own pid proves nothing (another thread of this process, or a dead process whose pid was
  // reused): for it, as for other hosts, the heartbeat alone decides.
  const pid = row.owner_pid;
  const checkable = row.owner_host === THIS_PROCESS.host && pid !== null && pid !== THIS_PROCESS.pid;
  return checkable && !processExists(pid) ? 'interrupted' : 'running';
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // it exists, but belongs to another user
  }
}

/** A run's row with its model key and progress. */
export const RUN_SELECT = `
  SELECT r.*, m.identity AS model_key,
    (SELECT count(*) FROM run_examples e WHERE e.run_id = r.id AND e.done) AS examples_done
  FROM runs r JOIN models m ON m.id = r.model_id`;

export function listItem(row: RunRow, live: Liveness): RunListItem {
  return {
    id: row.id,
    name: row.name,
    status: runStatus(row, live),
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
    notes: row.notes,
    tags: JSON.parse(row.tags_json),
  };
}

export function runDetail(row: RunRow, live: Liveness): RunDetail {
  return {
    ...listItem(row, live),
    model: JSON.parse(row.model_json),
    dataset: JSON.parse(row.dataset_json),
    protocol: JSON.parse(row.protocol_json),
    spec: row.spec_json ? JSON.parse(row.spec_json) : null,
    resolvedTechniques: JSON.parse(row.techniques_json) as ResolvedTechnique[],
    strategy: row.strategy,
    codeVersion: row.code_version,
    timings: JSON.parse(row.timings_json),
    error: row.error_json ? JSON.parse(row.error_json) : null,
    owner:
      row.owner_pid === null
        ? null
        : { pid: row.owner_pid, host: row.owner_host ?? '', heartbeatAt: row.heartbeat_at === null ? null : new Date(row.heartbeat_at).toISOString() },
    ownsRows: row.owns_rows === 1,
  };
}

export function runNotFound(runId: string): LogitscopeError {
  return new LogitscopeError('run_not_found', `there is no run "${runId}" in the results database`, runId);
}

/**
 * The runs a store is computing, and their heartbeat: one small UPDATE every `everyMs` for all of
 * them, from an unref'd timer, while there is at least one.
 */
export class Heartbeat {
  readonly runs = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqliteFile, private readonly everyMs: number) {}

  add(runId: string): void {
    this.runs.add(runId);
    this.timer ??= setInterval(() => this.beat(), this.everyMs).unref(); // never what keeps a process alive
  }

  delete(runId: string): void {
    this.runs.delete(runId);
    if (this.runs.size === 0) this.stop();
  }

  /** Lets go of every run (heartbeat NULL), so other readers see them interrupted at once rather than after the timeout. */
  releaseAll(): void {
    this.stop();
    if (this.runs.size > 0 && !this.db.readonly) {
      try {
        this.db.run(`UPDATE runs SET heartbeat_at = NULL WHERE ${OWN_RUNS}`, THIS_PROCESS.token, JSON.stringify([...this.runs]));
      } catch {
        // A locked or full file: the heartbeat goes stale instead, and the runs read as interrupted a little later.
      }
    }
    this.runs.clear();
  }

  private beat(): void {
    try {
      // A missed beat costs nothing (the timeout allows several); waiting for a lock would stall the event loop.
      this.db.pragma('busy_timeout = 0');
      try {
        this.db.run(`UPDATE runs SET heartbeat_at = ? WHERE ${OWN_RUNS}`, Date.now(), THIS_PROCESS.token, JSON.stringify([...this.runs]));
      } finally {
        this.db.pragma(`busy_timeout = ${this.db.busyTimeoutMs}`);
      }
    } catch {
      // Locked, full or closed underneath: the next beat tries again; a timer must never throw.
    }
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Parameters: this process's token, then a JSON array of run ids. */
const OWN_RUNS = `status = 'running' AND owner_token = ? AND id IN (SELECT value FROM json_each(?))`;

export function checkNewRun(r: NewRun): void {
  const invalid = (message: string, field: string) => new LogitscopeError('argument_invalid', message, field);
  if (r.techniques.length === 0) throw invalid('a run needs at least one technique', 'techniques');
  if (new Set(r.techniques.map((t) => t.id)).size !== r.techniques.length) throw invalid('technique ids must be unique within a run', 'techniques');
  if (r.layers.length === 0) throw invalid('a run needs at least one layer', 'layers');
  if (!r.layers.every(Number.isInteger)) throw invalid(`layers must be integers, got ${r.layers.join(', ')}`, 'layers');
  if (!Number.isInteger(r.k) || r.k < 1) throw invalid(`k must be a positive integer, got ${r.k}`, 'k');
}


/** What saveBatch checks rows against, and the ids it writes; read once per run and process. */
export interface RunShape {
  modelId: number;
  k: number;
  /** producers.id: the rows this run writes carry it (generations.ts). */
  producer: number;
  /** It reads only the rows it produced. */
  ownsRows: boolean;
  techniqueIds: Map<string, number>; // technique key -> techniques.id
  techniqueNames: string[]; // by run_techniques.ordinal
  layers: Set<number>;
  cellsPerExample: number;
  exampleIds: Map<string, number>; // example key -> examples.id
}

/** Reads a run's shape; run_not_found when there is no such run. */
export function loadShape(db: SqliteFile, runId: string): RunShape {
  const run = db.get<{ model_id: number; k: number; producer: number; owns_rows: number }>('SELECT model_id, k, producer, owns_rows FROM runs WHERE id = ?', runId);
  if (!run) throw runNotFound(runId);
  const techniques = db.all<{ key: string; id: number; name: string }>(
    'SELECT tq.key, tq.id, t.name FROM run_techniques t JOIN techniques tq ON tq.id = t.technique_id WHERE t.run_id = ? ORDER BY t.ordinal',
    runId,
  );
  const layers = db.all<{ layer: number }>('SELECT layer FROM run_layers WHERE run_id = ?', runId).map((r) => r.layer);
  const examples = db.all<{ key: string; id: number }>(
    'SELECT e.key, e.id FROM run_examples re JOIN examples e ON e.id = re.example_id WHERE re.run_id = ?',
    runId,
  );
  return {
    modelId: run.model_id,
    k: run.k,
    producer: run.producer,
    ownsRows: run.owns_rows === 1,
    techniqueIds: new Map(techniques.map((t) => [t.key, t.id])),
    techniqueNames: techniques.map((t) => t.name),
    layers: new Set(layers),
    cellsPerExample: techniques.length * layers.length,
    exampleIds: new Map(examples.map((e) => [e.key, e.id])),
  };
}

/**
 * deleteRun's first step (@model, @run): every row of the run's cells that no other run of the same
 * model reads (generations.ts chosen). Rows no run reads go too (such as a row this run computed while
 * another run stored the same cell first); the row each other run reads stays, so its numbers do not change.
 */
export const DELETE_UNSHARED_RESULTS = `DELETE FROM results WHERE model_id = @model
     AND (example_id, technique_id, layer) IN (
       SELECT re.example_id, t.technique_id, l.layer FROM run_examples re
       JOIN run_techniques t ON t.run_id = re.run_id JOIN run_layers l ON l.run_id = re.run_id WHERE re.run_id = @run)
     AND NOT EXISTS (
       SELECT 1 FROM run_examples re2
       JOIN runs r2 ON r2.id = re2.run_id AND r2.model_id = results.model_id
       JOIN run_techniques t2 ON t2.run_id = re2.run_id AND t2.technique_id = results.technique_id
       JOIN run_layers l2 ON l2.run_id = re2.run_id AND l2.layer = results.layer
       WHERE re2.example_id = results.example_id AND re2.run_id <> @run AND results.k >= r2.k
         AND results.gen = (SELECT min(x.gen) FROM results x
           WHERE x.model_id = results.model_id AND x.example_id = results.example_id AND x.technique_id = results.technique_id AND x.layer = results.layer
             AND x.k >= r2.k AND x.producer IS coalesce(iif(r2.owns_rows, r2.producer, NULL), x.producer)))`;

export function stillRunning(row: RunRow, byThisStore: boolean, action: 'resume' | 'delete'): LogitscopeError {
  const where = byThisStore ? 'this process' : `process ${row.owner_pid} on ${row.owner_host}`;
  return new LogitscopeError('run_busy', `run ${row.id} is still being computed by ${where}: cancel it first, then ${action} it`, 'runId');
}

/** Writes a run's name, notes and tags; a field left out keeps its value (iif(@given, new, old) per column, one statement for every edit). */
export function editRun(db: SqliteFile, runId: string, edit: RunEdit): void {
  db.run(
    `UPDATE runs SET name = iif(@setName, @name, name), notes = iif(@setNotes, @notes, notes), tags_json = iif(@setTags, @tags, tags_json) WHERE id = @id`,
    {
      id: runId,
      setName: edit.name !== undefined ? 1 : 0, name: edit.name ?? null,
      setNotes: edit.notes !== undefined ? 1 : 0, notes: edit.notes ?? null,
      setTags: edit.tags !== undefined ? 1 : 0, tags: JSON.stringify(edit.tags ?? []),
    },
  );
}
