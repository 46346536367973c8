import { LogitscopeError } from '../errors.ts';
import { corrupt, type SqliteFile } from './sqlite.ts';

/**
 * The results database's layout. Version n is the state after MIGRATIONS[0..n-1]; the version is
 * kept in `PRAGMA user_version`, so it travels inside the file and changes in the same
 * transaction as the tables it describes. Add a migration to change the schema; never edit one
 * that has shipped.
 *
 * Models, examples and techniques get integer ids: the results table repeats them on each of its
 * millions of rows, and three 64-character hashes per row would triple the file.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE          -- keys.ts modelKey: checkpoint identity, compute dtype, device
  );
  CREATE TABLE examples (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,              -- keys.ts exampleKey(tokens, position)
    tokens BLOB NOT NULL,                  -- Int32 LE, BOS included when the protocol used one
    position INTEGER NOT NULL
  );
  CREATE TABLE techniques (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,              -- keys.ts techniqueKey: kind, prompt tokens, target layer rule
    json TEXT NOT NULL                     -- the resolved technique that first produced this key
  );
  CREATE TABLE results (
    model_id INTEGER NOT NULL REFERENCES models(id),
    example_id INTEGER NOT NULL REFERENCES examples(id),
    technique_id INTEGER NOT NULL REFERENCES techniques(id),
    layer INTEGER NOT NULL,
    reference_top1 INTEGER NOT NULL,
    top1 INTEGER NOT NULL,
    surprisal REAL NOT NULL,
    surprisal_paper REAL NOT NULL,
    k INTEGER NOT NULL,
    topk BLOB NOT NULL,                    -- rows.ts encodeTopK: k Int32 LE ids, then k Float32 LE probabilities
    PRIMARY KEY (model_id, example_id, technique_id, layer)
  ) WITHOUT ROWID;

  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    model_id INTEGER NOT NULL REFERENCES models(id),
    model_path TEXT NOT NULL,
    model_json TEXT NOT NULL,
    dataset_json TEXT NOT NULL,            -- {"files": [...]}
    protocol_json TEXT NOT NULL,           -- ProtocolSettings as actually used
    spec_json TEXT,                        -- the SweepSpec as asked, when there was one
    techniques_json TEXT NOT NULL,         -- ResolvedTechnique[], prompt tokens included
    layers_json TEXT NOT NULL,
    k INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    code_version TEXT NOT NULL,
    examples_planned INTEGER,
    timings_json TEXT NOT NULL DEFAULT '{}',
    error_json TEXT
  );
  CREATE INDEX runs_by_created ON runs(created_at);
  -- name is the technique's id in exports ('logit_lens', 'custom_1'); ordinal keeps the run's order.
  CREATE TABLE run_techniques (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    name TEXT NOT NULL,
    technique_id INTEGER NOT NULL REFERENCES techniques(id),
    PRIMARY KEY (run_id, ordinal),
    UNIQUE (run_id, name)
  ) WITHOUT ROWID;
  CREATE INDEX run_techniques_by_technique ON run_techniques(technique_id);
  CREATE TABLE run_layers (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    layer INTEGER NOT NULL,
    PRIMARY KEY (run_id, layer)
  ) WITHOUT ROWID;
  -- done = every technique and layer of the run is stored for this example (kept by the store, for progress).
  CREATE TABLE run_examples (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    example_id INTEGER NOT NULL REFERENCES examples(id),
    record_index INTEGER NOT NULL,
    source TEXT,
    text TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, ordinal)
  ) WITHOUT ROWID;
  CREATE INDEX run_examples_by_example ON run_examples(example_id);
  `,
  // Who is computing a running run, so that one whose process died can be told from one still
  // going (run-rows.ts runStatus). 'interrupted' is derived from these on every read, never
  // stored: a read-only reader must see it too, and a stored one would go stale when the run is
  // resumed elsewhere. Runs left 'running' by version 1 have no heartbeat and read as interrupted.
  `
  ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
  ALTER TABLE runs ADD COLUMN owner_host TEXT;
  ALTER TABLE runs ADD COLUMN owner_token TEXT;         -- random per process: whose heartbeat may refresh the run
  ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;     -- ms since the epoch, the owner's clock; NULL once released
  `,
  // What a researcher writes about a run after the fact; never part of what determines its numbers.
  `
  ALTER TABLE runs ADD COLUMN notes TEXT;
  ALTER TABLE runs ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';   -- string[], in the order given
  `,
  // A finished result never changes (issue 23): rows are never overwritten. A cell (model, example,
  // technique, layer) can hold several rows, numbered by gen in the order they were written (0 for
  // every row stored before this version); producer is the run that computed (or merged) the row.
  // A run reads one row per cell (generations.ts chosen): the oldest with its k, or, for a run that
  // owns its rows (recompute, merge), the oldest of its own. New rows only ever get a higher gen, so
  // nothing written later changes which row a run reads. producers hands out ids that are never
  // reused, so a new run can never take a deleted run's rows for its own.
  `
  CREATE TABLE producers (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL);
  INSERT INTO producers (run_id) SELECT id FROM runs ORDER BY created_at, id;
  ALTER TABLE runs ADD COLUMN producer INTEGER;
  ALTER TABLE runs ADD COLUMN owns_rows INTEGER NOT NULL DEFAULT 0;   -- 1: reads only the rows it produced
  UPDATE runs SET producer = (SELECT p.id FROM producers p WHERE p.run_id = runs.id);
  CREATE TABLE results_v4 (
    model_id INTEGER NOT NULL REFERENCES models(id),
    example_id INTEGER NOT NULL REFERENCES examples(id),
    technique_id INTEGER NOT NULL REFERENCES techniques(id),
    layer INTEGER NOT NULL,
    gen INTEGER NOT NULL,                  -- 0, 1, ... per cell, in the order the rows were written
    producer INTEGER,                      -- producers.id of the run that wrote it; NULL for rows from before version 4
    reference_top1 INTEGER NOT NULL,
    top1 INTEGER NOT NULL,
    surprisal REAL NOT NULL,
    surprisal_paper REAL NOT NULL,
    k INTEGER NOT NULL,
    topk BLOB NOT NULL,
    PRIMARY KEY (model_id, example_id, technique_id, layer, gen)
  ) WITHOUT ROWID;
  INSERT INTO results_v4 SELECT model_id, example_id, technique_id, layer, 0, NULL, reference_top1, top1, surprisal, surprisal_paper, k, topk FROM results;
  DROP TABLE results;
  ALTER TABLE results_v4 RENAME TO results;
  `,
  // The per-row measures (issue 27; docs/PROTOCOL.md "Per-row measures"). Rows stored before this
  // version keep NULL ("not measured"): they are never rewritten, and a run that reads them says so.
  `
  ALTER TABLE results ADD COLUMN kl REAL;                -- KL(p_model ‖ p_technique), nats
  ALTER TABLE results ADD COLUMN rank INTEGER;           -- ids with a strictly greater logit than the reference top-1
  ALTER TABLE results ADD COLUMN entropy REAL;           -- of the technique's distribution, nats
  `,
  // Tracked tokens (issue 27; docs/PROTOCOL.md "Tracked tokens"): a sweep with track 'record' follows
  // each example's record token. The token is the run example's, not the example's (two records with
  // the same tokens may follow different ones), so its numbers live beside the results, keyed by the
  // cell and the token, added and chosen exactly as results rows are (generations.ts, tracked.ts).
  `
  ALTER TABLE run_examples ADD COLUMN track_id INTEGER;  -- the token this example's rows follow; NULL: none
  CREATE TABLE tracked (
    model_id INTEGER NOT NULL REFERENCES models(id),
    example_id INTEGER NOT NULL REFERENCES examples(id),
    technique_id INTEGER NOT NULL REFERENCES techniques(id),
    layer INTEGER NOT NULL,
    token INTEGER NOT NULL,
    gen INTEGER NOT NULL,
    producer INTEGER,
    logprob REAL NOT NULL,                 -- ln p_technique(token), over the full vocabulary
    rank INTEGER NOT NULL,                 -- ids with a strictly greater logit than the token's
    PRIMARY KEY (model_id, example_id, technique_id, layer, token, gen)
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
/** 'LScp' in the file header: tells our databases from other applications' SQLite files. */
export const APPLICATION_ID = 0x4c536370;

/**
 * Checks the file before anything is written to it — another application's database, a newer
 * schema or a damaged file is refused untouched — then sets the connection up and migrates.
 */
export function prepareSchema(db: SqliteFile): void {
  // The first read is where SQLite notices a file that is not a database (SQLITE_NOTADB).
  const version = Number(db.pragma('user_version'));
  const appId = Number(db.pragma('application_id'));
  if (appId !== APPLICATION_ID && (appId !== 0 || version !== 0 || Number(db.get<{ n: number }>('SELECT count(*) AS n FROM sqlite_schema')!.n) > 0)) {
    throw corrupt(db.file, 'it is a SQLite database of another application');
  }
  // Our migrations set the application id with version 1, so one of our files at version 0 or below
  // was changed by hand or damaged: migrating it would fail half-way on tables that already exist.
  if (version < 0 || (appId === APPLICATION_ID && version === 0)) {
    throw new LogitscopeError(
      'cache_schema_unknown',
      `this results database records schema version ${version}, which no Logitscope writes (versions are 1..${SCHEMA_VERSION}); it was changed by hand or damaged: restore it from a backup, or use another database (--db FILE or LOGITSCOPE_DB) — the file was not changed`,
      db.file,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new LogitscopeError(
      'cache_schema_newer',
      `this results database was written by a newer Logitscope (schema version ${version}; this one reads up to ${SCHEMA_VERSION}); update Logitscope, or set LOGITSCOPE_DB to use another database — the file was not changed`,
      db.file,
    );
  }
  const check = String(db.pragma('quick_check'));
  if (check !== 'ok') throw corrupt(db.file, `quick_check: ${check}`);

  db.pragma('foreign_keys = ON');
  if (db.readonly) {
    if (version < SCHEMA_VERSION) {
      throw new LogitscopeError('cache_readonly', `this results database has schema version ${version} and needs upgrading to ${SCHEMA_VERSION}, which this command does not do (it only reads); run one that writes to it once (\`logitscope sweep\` or \`logitscope serve\`), which upgrades it`, db.file);
    }
    return;
  }
  // WAL: a commit appends to the log, so a crash (kill -9) can only lose the transaction in flight,
  // and readers (review) never block the sweep's writes. NORMAL skips the fsync per commit, which
  // only matters on power loss, where at most the last commits are lost, never the file.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
      db.pragma(`application_id = ${APPLICATION_ID}`);
    });
  }
}
