import type { SqliteFile } from './sqlite.ts';

/** From keys (keys.ts) to the integer ids the results and tracked tables are keyed by. */

/** The stored model's id for its key; undefined when nothing of it is stored. */
export function modelIdOf(db: SqliteFile, modelKey: string): number | undefined {
  return db.get<{ id: number }>('SELECT id FROM models WHERE identity = ?', modelKey)?.id;
}

/** The ids of the stored examples or techniques among these keys (keys.ts), each with its key. */
export function idsOf(db: SqliteFile, table: 'examples' | 'techniques', keys: readonly string[]): { key: string; id: number }[] {
  return keys.flatMap((key) => {
    const row = db.get<{ id: number }>(`SELECT id FROM ${table} WHERE key = ?`, key);
    return row ? [{ key, id: row.id }] : [];
  });
}
