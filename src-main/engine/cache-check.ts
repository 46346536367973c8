/**
 * Files the app derives and caches (a tuned lens, converted weights, built graphs) are checked as
 * checkpoints are: each records the sha256 of its content when written, and the hash is compared
 * when it is opened. A file edited, zeroed or half-overwritten in place keeps its size and name, so
 * only its content can tell; the hash is remembered per (path, size, mtime, inode) in an index
 * beside the files (engine/identity.ts), so an unchanged file costs a stat, not a read.
 */
import { LogitscopeError } from '../errors.ts';
import { contentHashes } from './identity.ts';

/** The content hash to record for files just written under `indexDir` (a model's cache folder). */
export function recordHashes(files: readonly string[], indexDir: string): string[] {
  return contentHashes(files, { cacheRoot: indexDir });
}

/**
 * Throws `cache_corrupt` naming the first file whose content is not the one recorded, and saying
 * that it will be rebuilt: callers catch it, report it, and rebuild.
 */
export function verifyHashes(files: readonly { file: string; hash: string | undefined }[], indexDir: string, what: string): void {
  const got = contentHashes(files.map((f) => f.file), { cacheRoot: indexDir });
  files.forEach(({ file, hash }, i) => {
    if (hash === undefined) throw new LogitscopeError('cache_corrupt', `${what}: no content hash was recorded for this file (written by an older version); it is refused and will be rebuilt`, file);
    if (got[i] !== hash) {
      throw new LogitscopeError('cache_corrupt', `${what}: the file's content changed since it was written (sha256 ${got[i].slice(0, 12)}…, recorded ${hash.slice(0, 12)}…); it is refused and will be rebuilt`, file);
    }
  });
}

/**
 * Says that a cached file was refused and is being rebuilt: one line on stderr in the error's own
 * words (the CLI's stderr, the server's log). The rebuild itself is the caller's.
 */
export function reportRefused(e: LogitscopeError): void {
  console.error(`[${e.code}] ${e.path ? `${e.path}: ` : ''}${e.message}`);
}
