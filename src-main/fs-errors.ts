/**
 * What the environment does to a file the app writes (a full disk, a read-only folder, a file
 * where a folder should be) as coded errors naming the path and the fix, instead of an
 * `[unexpected]` stack trace: one place that reads the errno, for outputs and for the cache folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError } from './errors.ts';

type Where = { kind: 'output'; file: string; field?: string } | { kind: 'cache'; file: string };

const FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS']);
const NOT_A_FOLDER = new Set(['ENOTDIR', 'EEXIST']);

/** The coded error for a filesystem failure at `where`, or undefined when `e` is not one (or already coded). */
export function fsFailure(e: unknown, where: Where): LogitscopeError | undefined {
  if (e instanceof LogitscopeError) return undefined;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return undefined;
  const at = (e as NodeJS.ErrnoException).path ?? where.file;
  if (where.kind === 'output') {
    const field = where.field ?? where.file;
    if (FULL.has(code)) return new LogitscopeError('output_unwritable', `no space left to write ${where.file} (${code}); nothing was written under that name: free some space on its disk, or write elsewhere`, field);
    if (DENIED.has(code)) return new LogitscopeError('output_unwritable', `not allowed to write ${at} (${code}): choose a folder you can write to`, field);
    if (NOT_A_FOLDER.has(code) || code === 'EISDIR') return new LogitscopeError('output_unwritable', `cannot write ${where.file}: a part of its path is not a folder (${code} at ${at})`, field);
    return undefined;
  }
  const fix = 'or point LOGITSCOPE_CACHE_DIR at another folder (everything there can be rebuilt)';
  if (FULL.has(code)) return new LogitscopeError('cache_full', `no space left in the cache folder to write this (${code}); nothing half-written is kept, and it is built again next time: free some space, ${fix}`, where.file);
  if (DENIED.has(code)) return new LogitscopeError('cache_dir_unusable', `the cache folder cannot be written (${code} at ${at}): make it writable, ${fix}`, at);
  if (NOT_A_FOLDER.has(code)) return new LogitscopeError('cache_dir_unusable', `a part of the cache path is a file, not a folder (${code} at ${at}): remove that file, ${fix}`, at);
  return undefined;
}

/** Runs `write`, turning a filesystem failure into its coded error. */
export function mapFsFailure<T>(where: Where, write: () => T): T {
  try {
    return write();
  } catch (e) {
    throw fsFailure(e, where) ?? e;
  }
}

export async function mapFsFailureAsync<T>(where: Where, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    throw fsFailure(e, where) ?? e;
  }
}

/**
 * The cache root, checked before anything is built into it: a folder (made if missing) that can be
 * written. LOGITSCOPE_CACHE_DIR naming a file is the usual mistake this catches.
 */
export function checkCacheRoot(root: string): void {
  const st = mapFsFailure({ kind: 'cache', file: root }, () => fs.statSync(root, { throwIfNoEntry: false }));
  if (st && !st.isDirectory()) {
    throw new LogitscopeError('cache_dir_unusable', `the cache folder is a file, not a folder: point LOGITSCOPE_CACHE_DIR at a folder (it is created if missing), or remove the file`, root);
  }
  mapFsFailure({ kind: 'cache', file: root }, () => fs.mkdirSync(root, { recursive: true }));
  mapFsFailure({ kind: 'cache', file: root }, () => fs.accessSync(path.resolve(root), fs.constants.W_OK));
}
