import { LogitscopeError } from '../errors.ts';
import type { ExampleResult } from '../protocol/results.ts';
import { exampleResultOf } from '../sweep/readout.ts';
import type { LayerDifference, LayerSummary } from '../protocol/spec.ts';
import { summaryFromSums } from '../sweep/intervals.ts';
import { summaryBySource, type SourceSummary } from './by-source.ts';
import { LAST_WRONG_GROUP, LAST_WRONG_SELECT, summarizeCommitments, type CommitmentSummary } from './commitment-query.ts';
import { largestDifferences, pairedDifference, sharedExamples, type LargestDifference, type Pairing } from './difference.ts';
import { findExamples, type ExampleQuery, type FoundExamples } from './example-query.ts';
import { defaultDbPath } from '../db-paths.ts';
import { storedParitySums } from './parity-sums.ts';
import type { ParitySums } from '../sweep/parity.ts';
import { lookupTracked, trackedSums, type TrackedValue } from './tracked.ts';
import { iterateStored, lookupRows, readRunExamples, RUN_CELLS, type StoredExample } from './row-reads.ts';
import { saveRows, storeExamples } from './row-writes.ts';
import { endRun, insertRun, removeRun, reopenRun } from './run-lifecycle.ts';
import type { KeyedSums } from './unpaired.ts';
import {
  editRun, Heartbeat, listItem, loadShape, RUN_SELECT, runDetail, runNotFound, runStatus, stillRunning, type Liveness, type RunRow, type RunShape,
} from './run-rows.ts';
import { prepareSchema } from './schema.ts';
import { SqliteFile } from './sqlite.ts';
import { compareSummaries, SUMS_GROUP, SUMS_SELECT } from './summary-sums.ts';
import type {
  LayerComparison, LayerResultRow, LookupQuery, NewRun, RunDetail, RunEdit, RunEnd, RunExample, RunExampleInput, RunFilter, RunListItem,
} from './types.ts';

export type { StoredExample } from './row-reads.ts';

export interface StoreOpenOptions {
  /** Review only: every write fails with cache_readonly, and the file is never modified. */
  readonly?: boolean;
  /** How long a write waits for another process's lock before cache_locked (default 5 s). */
  busyTimeoutMs?: number;
  /** Caps the file's size; a write past it fails with cache_full, as on a full disk. */
  maxBytes?: number;
  /** How often a run this store computes shows it is alive (default 5 s). */
  heartbeatMs?: number;
  /** A running run whose heartbeat is older than this reads as interrupted (default 30 s: six missed beats). */
  staleAfterMs?: number;
}

/**
 * The results cache: every run and every per-example result, in one SQLite file. Results are keyed
 * by what determines them (keys.ts), not by run, so runs that share examples share rows, and a
 * sweep takes from `lookup` what an earlier run computed. Each `saveBatch` is one transaction.
 * A stored row is never changed: a run that owns its rows (recompute, merge) adds its own next to
 * the others' (generations.ts), so a finished run reads the same rows for as long as it exists.
 *
 * A facade over the store's jobs, each in its file: a run's life (run-lifecycle.ts), writing rows
 * (row-writes.ts), reading them back (row-reads.ts), the runs table (run-rows.ts), and review's queries
 * (summary.ts, difference.ts, example-query.ts, by-source.ts, parity.ts). It holds what lives as long
 * as the open file: the connection, each run's shape, and the heartbeat of the runs it computes.
 */
export class ResultStore {
  private readonly shapes = new Map<string, RunShape>();
  /** Runs this store created or resumed and has not finished, with their heartbeat. */
  private readonly computing: Heartbeat;

  private constructor(
    private readonly db: SqliteFile,
    heartbeatMs: number,
    private readonly staleAfterMs: number,
  ) {
    this.computing = new Heartbeat(db, heartbeatMs);
  }

  static open(file: string = defaultDbPath(), opts: StoreOpenOptions = {}): ResultStore {
    const db = SqliteFile.open(file, { readonly: opts.readonly, busyTimeoutMs: opts.busyTimeoutMs ?? 5000 });
    try {
      prepareSchema(db);
      const maxBytes = opts.maxBytes ?? maxBytesFromEnv();
      if (maxBytes !== undefined) db.pragma(`max_page_count = ${Math.max(1, Math.floor(maxBytes / Number(db.pragma('page_size'))))}`);
    } catch (e) {
      db.close();
      throw e;
    }
    return new ResultStore(db, opts.heartbeatMs ?? 5000, opts.staleAfterMs ?? 30_000);
  }

  get file(): string {
    return this.db.file;
  }

  /** Runs still computing are let go of, so they read as interrupted at once. */
  close(): void {
    this.computing.releaseAll();
    this.db.close();
  }

  /** Whether this store is computing the run now (created or resumed it, and has not finished it). */
  isOwnedAndRunning(runId: string): boolean {
    return this.computing.runs.has(runId);
  }

  createRun(r: NewRun): string {
    const id = insertRun(this.db, r);
    this.computing.add(id);
    return id;
  }

  /** The run's examples (row-writes.ts storeExamples); again on resume, replaced by ordinal. */
  setRunExamples(runId: string, examples: readonly RunExampleInput[]): void {
    storeExamples(this.db, runId, this.shape(runId), examples);
  }

  /**
   * Stored rows for these keys with at least k top-k entries, keyed `${exampleKey}|${techniqueKey}|${layer}`:
   * per cell the oldest such row (the one a run sharing the cache reads), or with `ownedBy` the oldest
   * that run produced (the one a run owning its rows reads).
   */
  lookup(q: LookupQuery): Map<string, LayerResultRow> {
    return lookupRows(this.db, q, q.ownedBy === undefined ? null : this.shape(q.ownedBy).producer);
  }

  /**
   * Stored tracked rows for these examples' followed tokens (tracked.ts lookupTracked), keyed
   * `${exampleKey}|${token}|${techniqueKey}|${layer}`, chosen as `lookup` chooses results rows.
   */
  lookupTracked(q: Omit<LookupQuery, 'exampleKeys' | 'k'> & { wanted: readonly { exampleKey: string; token: number }[] }): Map<string, TrackedValue> {
    return lookupTracked(this.db, q, q.ownedBy === undefined ? null : this.shape(q.ownedBy).producer);
  }

  /** One batch in one transaction, rows only ever added (row-writes.ts saveRows). */
  saveBatch(runId: string, rows: readonly LayerResultRow[]): void {
    saveRows(this.db, runId, this.shape(runId), rows);
  }

  /** Records how the run ended, its progress brought up to date first (run-lifecycle.ts endRun). */
  finishRun(runId: string, end: RunEnd): void {
    // Stop computing first: if the write below fails, the heartbeat goes stale and the run reads as interrupted.
    this.computing.delete(runId);
    endRun(this.db, runId, this.shape(runId), end);
  }

  /**
   * Marks an interrupted, cancelled or failed run as running again, owned by this process; the
   * sweep then computes its examples that are not done. A run a live process is computing is refused.
   */
  resumeRun(runId: string): void {
    this.db.transaction(() => {
      this.refuseIfRunning(runId, 'resume');
      reopenRun(this.db, runId);
    });
    this.computing.add(runId);
  }

  /** Newest first. A status filter applies to the status shown ('interrupted' included). */
  listRuns(filter: RunFilter = {}): RunListItem[] {
    const stored = filter.status === 'interrupted' ? 'running' : filter.status;
    const rows = this.db.all<RunRow>(
      `${RUN_SELECT}
       WHERE (@model IS NULL OR m.identity = @model) AND (@path IS NULL OR r.model_path = @path) AND (@status IS NULL OR r.status = @status)
         AND (@dataset IS NULL OR EXISTS (SELECT 1 FROM json_each(r.dataset_json, '$.files') f
               WHERE f.value = @dataset OR substr(f.value, -length(@dataset) - 1) IN ('/' || @dataset, '\\' || @dataset)))
       ORDER BY r.created_at DESC, r.id`,
      { model: filter.modelKey ?? null, path: filter.modelPath ?? null, status: stored ?? null, dataset: filter.dataset ?? null },
    );
    const live = this.liveness();
    return rows.map((row) => listItem(row, live)).filter((r) => filter.status === undefined || r.status === filter.status);
  }

  /** Ids of runs that start with `prefix`, at most `limit` (enough to tell unique from ambiguous). */
  runIdsStartingWith(prefix: string, limit = 2): string[] {
    return this.db.all<{ id: string }>('SELECT id FROM runs WHERE substr(id, 1, length(@prefix)) = @prefix ORDER BY id LIMIT @limit', { prefix, limit }).map((r) => r.id);
  }

  getRun(runId: string): RunDetail {
    return runDetail(this.runRow(runId), this.liveness());
  }

  /** The run's examples in order, text included; `done` ones need no computing on resume. */
  runExamples(runId: string): RunExample[] {
    this.shape(runId);
    return readRunExamples(this.db, runId);
  }

  /** The run's examples that have stored results, in order, with their readouts, read a page at a time (row-reads.ts). */
  iterateResults(runId: string, opts: { fromOrdinal?: number; pageSize?: number } = {}): Generator<StoredExample> {
    return iterateStored(this.db, this.shape(runId), runId, opts);
  }

  /** A page of the run's examples filtered and sorted by one technique × layer cell (example-query.ts). */
  findExamples(runId: string, query: ExampleQuery): FoundExamples {
    return findExamples(this.db, this.shape(runId), runId, query);
  }

  /** Every example with stored results, in the run's order, with technique ids (not keys). */
  runResults(runId: string): ExampleResult[] {
    return Array.from(this.iterateResults(runId), (s) => exampleResultOf(s.example, s.readouts));
  }

  /** Per technique and layer over the stored examples; the same numbers as summarize(runResults(id)). */
  summary(runId: string): LayerSummary[] {
    return this.layerSums(runId).map(summaryFromSums);
  }

  /** The sums the summary's intervals come from, with each technique's id (an unpaired comparison pairs by it). */
  layerSums(runId: string): KeyedSums[] {
    const shape = this.shape(runId);
    const sums = this.db.all<KeyedSums>(`${SUMS_SELECT} ${RUN_CELLS} ${SUMS_GROUP}`, { model: shape.modelId, k: shape.k, run: runId });
    const tracked = trackedSums(this.db, shape, runId);
    for (const s of sums) {
      const t = tracked.get(`${s.technique}|${s.layer}`);
      if (t) Object.assign(s, { tracked: t.n, trackedSurprisal: t.surprisal, trackedSurprisalSq: t.surprisalSq, trackedRank: t.rank, trackedRankSq: t.rankSq });
    }
    return sums;
  }

  /** Per technique, where its examples' predictions commit (commitment-query.ts). */
  commitments(runId: string): CommitmentSummary[] {
    const shape = this.shape(runId);
    const rows = this.db.all<{ technique: number; lastWrong: number | null }>(`${LAST_WRONG_SELECT} ${RUN_CELLS} ${LAST_WRONG_GROUP}`, { model: shape.modelId, k: shape.k, run: runId });
    return summarizeCommitments(rows, shape.techniqueNames, shape.layers);
  }

  /** The run's technique × last-layer sums for the parity check (parity-sums.ts, judged by sweep/parity.ts). */
  paritySums(runId: string, layer: number): ParitySums[] {
    const shape = this.shape(runId);
    return storedParitySums(this.db, { run: runId, model: shape.modelId, k: shape.k, layer });
  }

  /** One technique's per-layer summaries split by data source (by-source.ts). */
  summaryBySource(runId: string, technique: string): SourceSummary[] {
    return summaryBySource(this.db, this.shape(runId), runId, technique);
  }

  /** Both runs' summaries per technique id and layer, a's order first, with b − a. */
  compare(a: string, b: string): LayerComparison[] {
    return compareSummaries(this.summary(a), this.summary(b));
  }

  /**
   * Run b minus run a per technique and layer, paired over the examples both computed, or within
   * run a (b = a) technique `pairing.b` minus `pairing.a` (difference.ts).
   */
  difference(a: string, b: string, pairing?: Pairing): LayerDifference[] {
    return pairedDifference(this.db, { id: a, shape: this.shape(a) }, { id: b, shape: this.shape(b) }, pairing);
  }

  /** Per technique, the largest |b − a| of each surprisal and the top-1 disagreements over the shared rows (difference.ts). */
  largestDifferences(a: string, b: string): LargestDifference[] {
    return largestDifferences(this.db, { id: a, shape: this.shape(a) }, { id: b, shape: this.shape(b) });
  }

  sharedExamples(a: string, b: string): number {
    return sharedExamples(this.db, a, b);
  }

  /** Renames a run or changes its notes and tags; allowed in any status, since none of them affect results. */
  updateRun(runId: string, edit: RunEdit): RunListItem {
    this.runRow(runId);
    editRun(this.db, runId, edit);
    return listItem(this.runRow(runId), this.liveness());
  }

  /**
   * Deletes the run and, in the same transaction, the results and examples no other run refers
   * to; rows another run of the same model uses stay. A run still being computed is refused: its
   * next batch would refer to the deleted examples.
   */
  deleteRun(runId: string): void {
    const shape = this.shape(runId);
    this.db.transaction(() => {
      this.refuseIfRunning(runId, 'delete');
      removeRun(this.db, runId, shape);
    });
    this.shapes.delete(runId);
  }

  private liveness(): Liveness {
    return { now: Date.now(), staleAfterMs: this.staleAfterMs, computing: this.computing.runs };
  }

  private runRow(runId: string): RunRow {
    const row = this.db.get<RunRow>(`${RUN_SELECT} WHERE r.id = ?`, runId);
    if (!row) throw runNotFound(runId);
    return row;
  }

  private refuseIfRunning(runId: string, action: 'resume' | 'delete'): void {
    const row = this.runRow(runId);
    if (runStatus(row, this.liveness()) === 'running') throw stillRunning(row, this.computing.runs.has(runId), action);
  }

  private shape(runId: string): RunShape {
    let shape = this.shapes.get(runId);
    if (shape) return shape;
    shape = loadShape(this.db, runId);
    this.shapes.set(runId, shape);
    return shape;
  }
}

/**
 * LOGITSCOPE_DB_MAX_BYTES caps the size of every results database this process opens: past it a
 * write fails with cache_full, as on a full disk (a bound on a shared disk, and a way to try what a
 * full disk does at each stage of a sweep without filling one).
 */
function maxBytesFromEnv(): number | undefined {
  const text = process.env.LOGITSCOPE_DB_MAX_BYTES;
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new LogitscopeError('argument_invalid', `LOGITSCOPE_DB_MAX_BYTES must be a positive number of bytes, got "${text}"`, 'LOGITSCOPE_DB_MAX_BYTES');
  return n;
}
