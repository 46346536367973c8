import { randomUUID } from 'node:crypto';
import { LogitscopeError } from '../errors.ts';
import type { ExampleResult } from '../sweep/extract.ts';
import type { LayerSummary } from '../sweep/spec.ts';
import { summaryBySource, type SourceSummary } from './by-source.ts';
import { findExamples, type ExampleQuery, type FoundExamples } from './example-query.ts';
import { exampleKey, techniqueKey } from './keys.ts';
import { defaultDbPath } from './location.ts';
import { decodeTokens, decodeTopK, encodeTokens, encodeTopK } from './rows.ts';
import { prepareSchema } from './schema.ts';
import { storedParitySums, type ParitySums } from './parity.ts';
import { SqliteFile } from './sqlite.ts';
import { summaryFromSums, type LayerSums } from '../sweep/summary.ts';
import { compareSummaries, SUMS_GROUP, SUMS_SELECT } from './summary.ts';
import { largestDifferences, pairedDifference, sharedExamples, type LargestDifference } from './difference.ts';
import { chosen, NEXT_GEN } from './generations.ts';
import {
  checkNewRun, DELETE_UNSHARED_RESULTS, editRun, Heartbeat, listItem, loadShape, RUN_SELECT, runDetail, runNotFound, runStatus, stillRunning, THIS_PROCESS,
  type Liveness, type RunRow, type RunShape,
} from './run-rows.ts';
import type {
  LayerComparison, LayerDifference, LayerResultRow, LookupQuery, NewRun, RunDetail, RunEdit, RunEnd, RunExample, RunExampleInput, RunFilter, RunListItem,
} from './types.ts';

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

/** A run's example and the results stored for it, in the run's technique and layer order. */
export interface StoredExample {
  example: Omit<RunExample, 'text'>;
  result: ExampleResult;
}

/** A stored result as the hot paths read it (SqliteFile.rows), in CELL_COLUMNS order. */
type Cell = [layer: number, referenceTop1: number, top1: number, surprisal: number, surprisalPaper: number, topk: Buffer, kl: number | null, rank: number | null, entropy: number | null];
const CELL_COLUMNS = 'r.layer, r.reference_top1, r.top1, r.surprisal, r.surprisal_paper, r.topk, r.kl, r.rank, r.entropy';

/**
 * A run's stored results: its examples × techniques × layers, joined against the shared results.
 * CROSS JOIN fixes the loop order (SQLite's planner would otherwise scan every result of the model):
 * the run's examples in order, then its techniques and layers, then one primary-key probe per cell,
 * for the one row of the cell the run reads (generations.ts). Callers append further conditions with AND.
 */
const RUN_CELLS = `
  FROM run_examples re CROSS JOIN run_techniques t CROSS JOIN run_layers l CROSS JOIN results r
  WHERE re.run_id = @run AND t.run_id = @run AND l.run_id = @run
    AND r.model_id = @model AND r.example_id = re.example_id AND r.technique_id = t.technique_id AND r.layer = l.layer AND r.k >= @k
    AND ${chosen('r')}`;

const PAGE = 256;

/**
 * The results cache: every run and every per-example result, in one SQLite file. Results are keyed
 * by what determines them (keys.ts), not by run, so runs that share examples share rows, and a
 * sweep takes from `lookup` what an earlier run computed. Each `saveBatch` is one transaction.
 * A stored row is never changed: a run that owns its rows (recompute, merge) adds its own next to
 * the others' (generations.ts), so a finished run reads the same rows for as long as it exists.
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
    checkNewRun(r);
    const id = r.id ?? randomUUID();
    if (this.db.get('SELECT 1 FROM runs WHERE id = ?', id)) throw new LogitscopeError('argument_invalid', `a run with id "${id}" already exists`, 'id');
    const now = new Date().toISOString();
    this.db.transaction(() => {
      const producer = this.db.get<{ id: number }>('INSERT INTO producers (run_id) VALUES (?) RETURNING id', id)!.id;
      const modelId = this.db.get<{ id: number }>(
        'INSERT INTO models (identity) VALUES (?) ON CONFLICT (identity) DO UPDATE SET identity = excluded.identity RETURNING id',
        r.model.key,
      )!.id;
      this.db.run(
        `INSERT INTO runs (id, name, status, created_at, updated_at, model_id, model_path, model_json, dataset_json, protocol_json, spec_json,
           techniques_json, layers_json, k, strategy, code_version, examples_planned, owner_pid, owner_host, owner_token, heartbeat_at, producer, owns_rows)
         VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        id, r.name ?? null, now, now, modelId, r.model.path, JSON.stringify(r.model.info), JSON.stringify({ files: r.files, ...r.datasetStats }),
        JSON.stringify(r.protocol), r.spec ? JSON.stringify(r.spec) : null, JSON.stringify(r.techniques), JSON.stringify(r.layers),
        r.k, r.strategy, r.codeVersion, r.examplesPlanned ?? null, THIS_PROCESS.pid, THIS_PROCESS.host, THIS_PROCESS.token, Date.now(),
        producer, r.ownsRows ? 1 : 0,
      );
      r.techniques.forEach((t, ordinal) => {
        const techniqueId = this.db.get<{ id: number }>(
          'INSERT INTO techniques (key, json) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id',
          techniqueKey(t), JSON.stringify(t),
        )!.id;
        this.db.run('INSERT INTO run_techniques (run_id, ordinal, name, technique_id) VALUES (?, ?, ?, ?)', id, ordinal, t.id, techniqueId);
      });
      for (const layer of new Set(r.layers)) this.db.run('INSERT INTO run_layers (run_id, layer) VALUES (?, ?)', id, layer);
    });
    this.computing.add(id);
    return id;
  }

  /**
   * Records the run's examples (again, on resume: rows are replaced by ordinal). An example whose
   * every technique and layer is already in the cache is marked done at once.
   */
  setRunExamples(runId: string, examples: readonly RunExampleInput[]): void {
    const shape = this.shape(runId);
    // Ids join the cached shape only once committed: a rolled-back id can be handed out again.
    const added = new Map<string, number>();
    this.db.transaction(() => {
      for (const e of examples) {
        const key = exampleKey(e.tokens, e.position);
        const exampleId = this.db.get<{ id: number }>(
          'INSERT INTO examples (key, tokens, position) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id',
          key, encodeTokens(e.tokens), e.position,
        )!.id;
        added.set(key, exampleId);
        this.db.run(
          'INSERT OR REPLACE INTO run_examples (run_id, ordinal, example_id, record_index, source, text, done) VALUES (?, ?, ?, ?, ?, ?, ?)',
          runId, e.ordinal, exampleId, e.recordIndex, e.source ?? null, e.text ?? null, this.complete(runId, shape, exampleId) ? 1 : 0,
        );
      }
      this.db.run(
        // The slice as drawn replaces the estimate given at createRun (a filter can leave fewer).
        `UPDATE runs SET examples_planned = (SELECT count(*) FROM run_examples WHERE run_id = @id), updated_at = @now WHERE id = @id`,
        { id: runId, now: new Date().toISOString() },
      );
    });
    for (const [key, id] of added) shape.exampleIds.set(key, id);
  }

  /**
   * Stored rows for these keys with at least k top-k entries, keyed `${exampleKey}|${techniqueKey}|${layer}`:
   * per cell the oldest such row (the one a run sharing the cache reads), or with `ownedBy` the oldest
   * that run produced (the one a run owning its rows reads).
   */
  lookup(q: LookupQuery): Map<string, LayerResultRow> {
    const hits = new Map<string, LayerResultRow>();
    const model = this.db.get<{ id: number }>('SELECT id FROM models WHERE identity = ?', q.modelKey);
    if (!model) return hits;
    const idsOf = (table: 'examples' | 'techniques', keys: readonly string[]) =>
      keys.flatMap((key) => {
        const row = this.db.get<{ id: number }>(`SELECT id FROM ${table} WHERE key = ?`, key);
        return row ? [{ key, id: row.id }] : [];
      });
    const techniques = idsOf('techniques', q.techniqueKeys);
    const layers = new Set(q.layers);
    const producer = q.ownedBy === undefined ? null : this.shape(q.ownedBy).producer;
    for (const e of idsOf('examples', q.exampleKeys)) {
      for (const t of techniques) {
        // Oldest first: the first row seen for a layer is the one kept.
        const cells = this.db.rows<Cell>(
          `SELECT ${CELL_COLUMNS} FROM results r WHERE r.model_id = ? AND r.example_id = ? AND r.technique_id = ? AND r.k >= ?
             AND r.producer IS coalesce(?, r.producer) ORDER BY r.layer, r.gen`,
          model.id, e.id, t.id, q.k, producer,
        );
        for (const c of cells) {
          const key = `${e.key}|${t.key}|${c[0]}`;
          if (layers.has(c[0]) && !hits.has(key)) hits.set(key, rowFrom(c, e.key, t.key, q.k));
        }
      }
    }
    return hits;
  }

  /**
   * Saves one batch in one transaction: after a crash the batch is either all there or not at all.
   * Rows are only ever added, never overwritten (generations.ts): a row is written as its cell's next
   * generation, produced by this run, unless the cell already holds a row this run reads (another
   * run stored it meanwhile, or this run's own earlier copy), which would never be read.
   */
  saveBatch(runId: string, rows: readonly LayerResultRow[]): void {
    const shape = this.shape(runId);
    const values = rows.map((row) => {
      const exampleId = shape.exampleIds.get(row.exampleKey);
      const techniqueId = shape.techniqueIds.get(row.techniqueKey);
      const k = row.topK.ids.length;
      if (exampleId === undefined || techniqueId === undefined || !shape.layers.has(row.layer)) {
        throw new LogitscopeError('argument_invalid', `a result row (layer ${row.layer}) is not an example, technique and layer of run ${runId}`, 'rows');
      }
      if (k === 0 || row.topK.probs.length !== k) throw new LogitscopeError('argument_invalid', 'a result row has an empty or ragged top-k', 'rows');
      return {
        model: shape.modelId, example: exampleId, technique: techniqueId, layer: row.layer, reference: row.referenceTop1, top1: row.top1,
        surprisal: row.surprisal, surprisalPaper: row.surprisalPaper, rowK: k, topk: encodeTopK(row.topK), kl: row.kl, rank: row.rank, entropy: row.entropy,
      };
    });
    this.db.transaction(() => {
      // First, so that a run deleted meanwhile (by another process) is run_not_found, not a foreign key error.
      const changed = this.db.run(
        'UPDATE runs SET updated_at = ?, heartbeat_at = iif(owner_token = ?, ?, heartbeat_at) WHERE id = ?',
        new Date().toISOString(), THIS_PROCESS.token, Date.now(), runId,
      );
      if (changed === 0) throw runNotFound(runId);
      for (const v of values) {
        this.db.run(
          `INSERT INTO results (model_id, example_id, technique_id, layer, gen, producer, reference_top1, top1, surprisal, surprisal_paper, k, topk, kl, rank, entropy)
           SELECT @model, @example, @technique, @layer, ${NEXT_GEN}, @producer, @reference, @top1, @surprisal, @surprisalPaper, @rowK, @topk, @kl, @rank, @entropy
           WHERE NOT EXISTS (SELECT 1 FROM results x WHERE x.model_id = @model AND x.example_id = @example AND x.technique_id = @technique
             AND x.layer = @layer AND x.k >= @k AND x.producer IS coalesce(@reads, x.producer))`,
          { ...v, producer: shape.producer, k: shape.k, reads: shape.ownsRows ? shape.producer : null },
        );
      }
      this.markComplete(runId, shape, new Set(values.map((v) => v.example)));
    });
  }

  /**
   * Records how the run ended. Progress is brought up to date first: examples whose results another
   * run saved meanwhile were taken from the cache without a saveBatch of this run to mark them done.
   */
  finishRun(runId: string, end: RunEnd): void {
    // Stop computing first: if the write below fails, the heartbeat goes stale and the run reads as interrupted.
    this.computing.delete(runId);
    const shape = this.shape(runId);
    this.db.transaction(() => {
      const pending = this.db.all<{ id: number }>('SELECT DISTINCT example_id AS id FROM run_examples WHERE run_id = ? AND NOT done', runId);
      this.markComplete(runId, shape, pending.map((e) => e.id));
      this.db.run(
        `UPDATE runs SET status = ?, updated_at = ?, timings_json = json_patch(timings_json, ?), error_json = ? WHERE id = ?`,
        end.status, new Date().toISOString(), JSON.stringify(end.timings ?? {}), end.error ? JSON.stringify(end.error) : null, runId,
      );
    });
  }

  /**
   * Marks an interrupted, cancelled or failed run as running again, owned by this process; the
   * sweep then computes its examples that are not done. A run a live process is computing is refused.
   */
  resumeRun(runId: string): void {
    this.db.transaction(() => {
      this.refuseIfRunning(runId, 'resume');
      this.db.run(
        `UPDATE runs SET status = 'running', error_json = NULL, updated_at = ?, owner_pid = ?, owner_host = ?, owner_token = ?, heartbeat_at = ? WHERE id = ?`,
        new Date().toISOString(), THIS_PROCESS.pid, THIS_PROCESS.host, THIS_PROCESS.token, Date.now(), runId,
      );
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
    return this.db
      .all<{ ordinal: number; record_index: number; source: string | null; text: string | null; done: number; key: string; tokens: Buffer; position: number }>(
        `SELECT re.ordinal, re.record_index, re.source, re.text, re.done, e.key, e.tokens, e.position
         FROM run_examples re JOIN examples e ON e.id = re.example_id WHERE re.run_id = ? ORDER BY re.ordinal`,
        runId,
      )
      .map((r) => ({
        ordinal: r.ordinal, recordIndex: r.record_index, ...(r.source !== null && { source: r.source }), ...(r.text !== null && { text: r.text }),
        tokens: decodeTokens(r.tokens), position: r.position, exampleKey: r.key, done: r.done === 1,
      }));
  }

  /**
   * The run's examples that have stored results, in order, a page of examples per query: memory
   * stays flat for exports, and no statement stays open between pages, so writes can go on.
   */
  *iterateResults(runId: string, opts: { fromOrdinal?: number; pageSize?: number } = {}): Generator<StoredExample> {
    const shape = this.shape(runId);
    const page = opts.pageSize ?? PAGE;
    for (let after = (opts.fromOrdinal ?? 0) - 1; ; ) {
      const examples = this.db.all<{ ordinal: number; record_index: number; source: string | null; done: number; key: string; tokens: Buffer; position: number }>(
        `SELECT re.ordinal, re.record_index, re.source, re.done, e.key, e.tokens, e.position
         FROM run_examples re JOIN examples e ON e.id = re.example_id WHERE re.run_id = ? AND re.ordinal > ? ORDER BY re.ordinal LIMIT ${page}`,
        runId, after,
      );
      if (examples.length === 0) return;
      const last = examples[examples.length - 1].ordinal;
      const cells = this.db.rows<[ordinal: number, technique: number, ...Cell]>(
        `SELECT re.ordinal, t.ordinal, ${CELL_COLUMNS}
         ${RUN_CELLS} AND re.ordinal > @after AND re.ordinal <= @last ORDER BY re.ordinal, t.ordinal, l.layer`,
        { model: shape.modelId, k: shape.k, run: runId, after, last },
      );
      let i = 0;
      for (const e of examples) {
        const tokens = decodeTokens(e.tokens);
        const result: ExampleResult = { tokens, position: e.position, reference_top1: -1, layers: [] };
        for (; i < cells.length && cells[i][0] === e.ordinal; i++) {
          const [, technique, layer, referenceTop1, top1, surprisal, surprisalPaper, topk, kl, rank, entropy] = cells[i];
          result.reference_top1 = referenceTop1;
          result.layers.push({ layer, technique: shape.techniqueNames[technique], top1, surprisal, surprisal_paper: surprisalPaper, kl, rank, entropy, top_k: decodeTopK(topk, shape.k) });
        }
        if (result.layers.length === 0) continue;
        const example = { ordinal: e.ordinal, recordIndex: e.record_index, ...(e.source !== null && { source: e.source }), tokens, position: e.position, exampleKey: e.key, done: e.done === 1 };
        yield { example, result };
      }
      after = last;
    }
  }

  /** A page of the run's examples filtered and sorted by one technique × layer cell (example-query.ts). */
  findExamples(runId: string, query: ExampleQuery): FoundExamples {
    return findExamples(this.db, this.shape(runId), runId, query);
  }

  /** Every example with stored results, in the run's order, with technique ids (not keys). */
  runResults(runId: string): ExampleResult[] {
    return Array.from(this.iterateResults(runId), (s) => s.result);
  }

  /** Per technique and layer over the stored examples; the same numbers as summarize(runResults(id)). */
  summary(runId: string): LayerSummary[] {
    const shape = this.shape(runId);
    return this.db.all<LayerSums>(`${SUMS_SELECT} ${RUN_CELLS} ${SUMS_GROUP}`, { model: shape.modelId, k: shape.k, run: runId }).map(summaryFromSums);
  }

  /** The run's technique × last-layer sums for the parity check (parity.ts). */
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

  /** Run b minus run a per technique and layer, paired over the examples both computed (difference.ts). */
  difference(a: string, b: string): LayerDifference[] {
    return pairedDifference(this.db, { id: a, shape: this.shape(a) }, { id: b, shape: this.shape(b) });
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
      const exampleIds = this.db.all<{ id: number }>('SELECT DISTINCT example_id AS id FROM run_examples WHERE run_id = ?', runId);
      this.db.run(DELETE_UNSHARED_RESULTS, { model: shape.modelId, run: runId });
      this.db.run('DELETE FROM runs WHERE id = ?', runId);
      for (const { id } of exampleIds) {
        this.db.run('DELETE FROM examples WHERE id = ? AND NOT EXISTS (SELECT 1 FROM run_examples WHERE example_id = ?)', id, id);
      }
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

  /** Whether every technique and layer of the run is stored for this example, with the run's k. */
  private complete(runId: string, shape: RunShape, exampleId: number): boolean {
    const { n } = this.db.get<{ n: number }>(
      `SELECT count(*) AS n FROM run_techniques t JOIN run_layers l ON l.run_id = t.run_id
       JOIN results r ON r.model_id = @model AND r.example_id = @example AND r.technique_id = t.technique_id AND r.layer = l.layer AND r.k >= @k
         AND ${chosen('r')}
       WHERE t.run_id = @run`,
      { model: shape.modelId, example: exampleId, k: shape.k, run: runId },
    )!;
    return n === shape.cellsPerExample;
  }

  private markComplete(runId: string, shape: RunShape, exampleIds: Iterable<number>): void {
    for (const id of exampleIds) {
      if (this.complete(runId, shape, id)) this.db.run('UPDATE run_examples SET done = 1 WHERE run_id = ? AND example_id = ?', runId, id);
    }
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

function rowFrom([layer, referenceTop1, top1, surprisal, surprisalPaper, topk, kl, rank, entropy]: Cell, exampleKey: string, techniqueKey: string, k: number): LayerResultRow {
  return { exampleKey, techniqueKey, layer, referenceTop1, top1, surprisal, surprisalPaper, topK: decodeTopK(topk, k), kl, rank, entropy };
}


