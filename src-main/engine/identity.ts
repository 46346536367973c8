/**
 * A checkpoint's identity is the hash of every byte of its files, so a tensor edited in place gives
 * a new identity (and so new cached results, graphs and converted weights). Hashing 24 GB takes
 * seconds, so each file's hash is remembered in a small index in the cache root, keyed by the file's
 * (real path, size, mtime, inode): reopening an unchanged checkpoint reads no weights at all.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError, type ErrorCode } from '../errors.ts';
import { writeFileAtomically } from '../fs-atomic.ts';

/** One file of a checkpoint: its name inside the checkpoint directory, and its real path. */
export interface IdentityFile {
  name: string;
  file: string;
}

/**
 * What was actually read and hashed in this thread. Tests and the bench read it to tell an index
 * hit from a re-hash without timing anything.
 */
export const hashStats = { files: 0, bytes: 0 };

/**
 * sha256: with the CPU's SHA extensions (x86 SHA-NI, ARMv8 SHA2) OpenSSL hashes at about 1.5 GB/s
 * on one core, as fast as sha1 and 2-3x faster than md5, blake2b512 or sha512-256 on this project's
 * machines (Node 20, OpenSSL 3), and unlike sha1 or md5 nobody can construct a collision. Where the
 * CPU lacks SHA extensions it drops to about 0.5 GB/s, once per file, since the index remembers it.
 */
const HASH = 'sha256';
/**
 * Reads of 128 KiB measured fastest (1.3 GB/s read+hash against 0.9 GB/s for 1-64 MiB reads):
 * the chunk is still in the CPU's cache when it is hashed right after being read.
 */
const CHUNK_BYTES = 128 * 1024;
/**
 * A hash is trusted for a file only if the file's mtime is this much older than the moment hashing
 * began. Otherwise a write in the same timestamp tick as our read (1-2 s on some filesystems, a few
 * ms on ext4) could change the bytes but not the (size, mtime, inode) tuple; such files are re-hashed
 * on the next open, as git treats "racily clean" files.
 */
const RACY_MARGIN_MS = 2000;
const INDEX_NAME = 'content-hashes.json';
const INDEX_VERSION = 1;
/** Changes the identity of every checkpoint if the way it is computed ever changes. */
const IDENTITY_DOMAIN = 'logitscope-checkpoint-content-v1\0';

interface IndexEntry {
  size: string;
  mtimeNs: string;
  ino: string;
  hash: string;
  hashedAtMs: number;
}

interface IndexFile {
  version: number;
  /** By real path. */
  files: Record<string, IndexEntry>;
}

/**
 * The identity of the checkpoint made of `files`: a hash over each file's name and the hash of its
 * content, in the given order. The names, not the real paths, go in, so an identical copy elsewhere
 * (or a re-linked hub cache) has the same identity. Without `cacheRoot` every file is hashed.
 */
export function contentIdentity(files: readonly IdentityFile[], opts: { cacheRoot?: string } = {}): string {
  const hashes = contentHashes(files.map((f) => f.file), opts);
  const identity = crypto.createHash(HASH).update(IDENTITY_DOMAIN);
  files.forEach(({ name }, i) => {
    framed(identity, name);
    framed(identity, hashes[i]);
  });
  return identity.digest('hex');
}

/**
 * The sha256 of each file's content, remembered in the index as the checkpoint's are: the cached
 * files the app writes itself (a tuned lens, converted weights, built graphs) record this hash when
 * written and compare it when opened (engine/cache-check.ts), at the cost of a stat when unchanged.
 */
export function contentHashes(files: readonly string[], opts: { cacheRoot?: string } = {}): string[] {
  const indexFile = opts.cacheRoot ? path.join(opts.cacheRoot, INDEX_NAME) : undefined;
  const index = indexFile ? readIndex(indexFile) : {};
  const fresh: Record<string, IndexEntry> = {};
  const hashes = files.map((file) => {
    const known = trustedHash(index[file], fs.statSync(file, { bigint: true }));
    if (known) return known;
    const entry = hashFile(file);
    fresh[file] = entry;
    return entry.hash;
  });
  if (indexFile && Object.keys(fresh).length > 0) writeIndex(indexFile, fresh);
  return hashes;
}

function framed(hash: crypto.Hash, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(bytes.length));
  hash.update(len).update(bytes);
}

function trustedHash(entry: IndexEntry | undefined, st: fs.BigIntStats): string | undefined {
  if (!entry || entry.size !== String(st.size) || entry.mtimeNs !== String(st.mtimeNs) || entry.ino !== String(st.ino)) return undefined;
  return Number(st.mtimeMs) < entry.hashedAtMs - RACY_MARGIN_MS ? entry.hash : undefined;
}

/** Streams the whole file through the hash; Buffers cap at 4 GiB and a checkpoint file can be 24 GB. */
function hashFile(file: string, changedCode: ErrorCode = 'weights_corrupt'): IndexEntry {
  const hashedAtMs = Date.now();
  const fd = fs.openSync(file, 'r');
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    const hash = crypto.createHash(HASH);
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let at = 0;
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, at);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      at += n;
    }
    const after = fs.fstatSync(fd, { bigint: true });
    if (BigInt(at) !== before.size || after.size !== before.size || after.mtimeNs !== before.mtimeNs) {
      throw new LogitscopeError(changedCode, 'the file changed while it was being read (is it still being written?)', file);
    }
    hashStats.files++;
    hashStats.bytes += at;
    return { size: String(before.size), mtimeNs: String(before.mtimeNs), ino: String(before.ino), hash: hash.digest('hex'), hashedAtMs };
  } finally {
    fs.closeSync(fd);
  }
}

/** A missing, unreadable or foreign index is an empty one: it only saves time, it never decides an identity. */
function readIndex(indexFile: string): Record<string, IndexEntry> {
  try {
    const raw = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as Partial<IndexFile> | null;
    return raw?.version === INDEX_VERSION && typeof raw.files === 'object' && raw.files !== null ? raw.files : {};
  } catch {
    return {};
  }
}

/**
 * Adds `fresh` to the index on disk. The index is read again just before, so entries another process
 * wrote meanwhile are kept; two writers racing can still lose one's entries, which costs a re-hash
 * later and is never wrong. Entries of files that no longer exist are dropped so the index stays small.
 */
function writeIndex(indexFile: string, fresh: Record<string, IndexEntry>): void {
  const files: Record<string, IndexEntry> = {};
  for (const [file, entry] of Object.entries(readIndex(indexFile))) if (fs.existsSync(file)) files[file] = entry;
  Object.assign(files, fresh);
  try {
    fs.mkdirSync(path.dirname(indexFile), { recursive: true });
    // Several processes and threads may open checkpoints at once: each writes its own temporary file.
    writeFileAtomically(indexFile, JSON.stringify({ version: INDEX_VERSION, files } satisfies IndexFile), { unique: true });
  } catch {
    // A read-only or full cache root: the identity is still right, the next open just hashes again.
  }
}

/** One file's sha256 with the (size, mtime, inode) it was taken at. */
export interface FileHash {
  hash: string;
  size: number;
  mtimeNs: string;
  ino: string;
}

/**
 * One file's content hash through the same remembered index as a checkpoint's files (a dataset
 * file's fingerprint, data/fingerprint.ts): streamed once, then remembered by (real path, size,
 * mtime, inode). A file that changes while it is hashed is `changedCode`.
 */
export function fileHash(file: string, opts: { cacheRoot?: string; changedCode?: ErrorCode } = {}): FileHash {
  const real = fs.realpathSync(file);
  const indexFile = opts.cacheRoot ? path.join(opts.cacheRoot, INDEX_NAME) : undefined;
  let entry = indexFile ? readIndex(indexFile)[real] : undefined;
  if (!entry || !trustedHash(entry, fs.statSync(real, { bigint: true }))) {
    entry = hashFile(real, opts.changedCode);
    if (indexFile) writeIndex(indexFile, { [real]: entry });
  }
  return { hash: entry.hash, size: Number(entry.size), mtimeNs: entry.mtimeNs, ino: entry.ino };
}
