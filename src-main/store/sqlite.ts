import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { LogitscopeError } from '../errors.ts';

/**
 * The better-sqlite3 seam: the only module that imports the driver. Every call goes through
 * here so that SQLite's error codes become LogitscopeErrors that name the file and say what to do.
 */

export type SqlValue = number | bigint | string | Buffer | null;
/** Positional values for `?`, or one object for `@name` parameters. */
export type SqlParam = SqlValue | Record<string, SqlValue>;

export interface SqliteOpenOptions {
  readonly?: boolean;
  /** How long a write waits for another connection's lock before failing with cache_locked. */
  busyTimeoutMs: number;
}

export class SqliteFile {
  /** Statements are prepared once per SQL text; preparing is a large share of a small query's cost. */
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
    readonly readonly: boolean,
    readonly busyTimeoutMs: number,
  ) {}

  static open(file: string, opts: SqliteOpenOptions): SqliteFile {
    const readonly = opts.readonly ?? false;
    if (!readonly) {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
      } catch (e) {
        throw folderError(e as NodeJS.ErrnoException, file);
      }
    }
    try {
      // Only ever the Node build: the desktop runs the Lab in a Node engine process, never in Electron.
      const db = new Database(file, { readonly, fileMustExist: readonly, timeout: opts.busyTimeoutMs });
      return new SqliteFile(db, file, readonly, opts.busyTimeoutMs);
    } catch (e) {
      throw translate(e, { file, readonly, busyTimeoutMs: opts.busyTimeoutMs });
    }
  }

  run(sql: string, ...params: SqlParam[]): number {
    return this.guard(() => this.statement(sql).run(...params).changes);
  }

  get<T>(sql: string, ...params: SqlParam[]): T | undefined {
    return this.guard(() => this.statement(sql).get(...params) as T | undefined);
  }

  all<T>(sql: string, ...params: SqlParam[]): T[] {
    return this.guard(() => this.statement(sql).all(...params) as T[]);
  }

  /**
   * Rows as arrays of column values, in SELECT order: for the hot paths that read a run's
   * hundred thousand rows, where building an object per row is a third of the cost.
   */
  rows<T extends unknown[]>(sql: string, ...params: SqlParam[]): T[] {
    return this.guard(() => this.statement(sql, true).all(...params) as T[]);
  }

  /** Several statements without parameters (schema steps). */
  exec(sql: string): void {
    this.guard(() => this.db.exec(sql));
  }

  /** The first column of a pragma's first row. */
  pragma(sql: string): unknown {
    return this.guard(() => this.db.pragma(sql, { simple: true }));
  }

  /**
   * Runs `fn` in one transaction; on any error it rolls back, so a failed write leaves the file as it was.
   * BEGIN IMMEDIATE takes the write lock up front, where the busy timeout applies; a deferred
   * transaction that reads first can instead fail at once with SQLITE_BUSY when it tries to write.
   */
  transaction<T>(fn: () => T): T {
    return this.guard(() => this.db.transaction(fn).immediate());
  }

  close(): void {
    if (this.db.open) this.guard(() => this.db.close());
  }

  private statement(sql: string, raw = false): Database.Statement {
    const key = raw ? `raw:${sql}` : sql;
    let s = this.statements.get(key);
    if (!s) {
      s = this.db.prepare(sql);
      if (raw) s.raw(true);
      this.statements.set(key, s);
    }
    return s;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translate(e, this);
    }
  }
}

/** SQLite's result codes (extended ones included, e.g. SQLITE_CORRUPT_INDEX) as LogitscopeErrors. */
function translate(e: unknown, { file, readonly, busyTimeoutMs }: Pick<SqliteFile, 'file' | 'readonly' | 'busyTimeoutMs'>): unknown {
  if (e instanceof LogitscopeError || !(e instanceof Database.SqliteError)) return e;
  // Extended codes (SQLITE_CORRUPT_INDEX, SQLITE_READONLY_DBMOVED, ...) share their primary code's meaning.
  const primary = e.code.split('_').slice(0, 2).join('_');
  switch (primary) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new LogitscopeError(
        'cache_locked',
        `another process is using this results database (it kept it locked for more than ${busyTimeoutMs / 1000} s); close the other Logitscope window or sweep and try again`,
        file,
      );
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return corrupt(file, e.message);
    case 'SQLITE_READONLY':
      return new LogitscopeError(
        'cache_readonly',
        readonly
          ? 'this results database is open read-only (for review); open it without read-only to change it'
          : `cannot write to this results database (${e.message}); check that it and its folder are writable, or choose another location with LOGITSCOPE_DB`,
        file,
      );
    case 'SQLITE_FULL':
      return new LogitscopeError(
        'cache_full',
        'the disk holding this results database is full (or the database reached its size limit); results saved before this batch are kept — free some space and resume the run',
        file,
      );
    case 'SQLITE_CANTOPEN':
      return cannotOpen(file, e.message);
    default:
      return e;
  }
}

export function corrupt(file: string, detail: string): LogitscopeError {
  return new LogitscopeError(
    'cache_corrupt',
    `this file is damaged or is not a Logitscope results database (${detail}); it was left untouched — move it aside (Logitscope then starts a new one) or restore it from a backup`,
    file,
  );
}

/** SQLITE_CANTOPEN says nothing about why; the file system does. */
function cannotOpen(file: string, detail: string): LogitscopeError {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return new LogitscopeError('argument_invalid', 'this is a folder, not a results database file', file);
  if (!stat) return new LogitscopeError('cache_missing', 'there is no results database at this path (it is created by the first sweep)', file);
  try {
    fs.accessSync(path.dirname(file), fs.constants.W_OK);
  } catch (e) {
    return folderError(e as NodeJS.ErrnoException, file);
  }
  return new LogitscopeError('cache_readonly', `SQLite cannot open this results database (${detail}); check its permissions`, file);
}

function folderError(e: NodeJS.ErrnoException, file: string): LogitscopeError {
  if (e.code === 'ENOSPC') {
    return new LogitscopeError('cache_full', 'the disk is full: cannot create the folder for the results database', file);
  }
  return new LogitscopeError(
    'cache_readonly',
    `the folder for the results database cannot be created or written (${e.code ?? e.message}); make it writable, or choose another location with LOGITSCOPE_DB`,
    file,
  );
}
