import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LogitscopeError, type SerializedError } from '../errors.ts';
import { ResultStore, type StoredExample } from '../store/result-store.ts';
import { rowsFromReadouts } from '../store/rows.ts';
import type { RunDetail, RunStatus } from '../store/types.ts';
import { ranges, type Shard } from '../protocol/shards.ts';
import { shardOfRun } from './shard.ts';

/**
 * Shards of one sweep (each computed into its own results database by `sweep --shard i/N`) merged
 * into one run of another database. Every shard run records the whole slice, so the merge can
 * check that the shards agree on it, write the merged run with every example, and tell exactly
 * which ordinals are still missing. Result rows are copied as stored (same keys, same numbers),
 * so the merged run's export is the unsharded run's.
 *
 * The merged run's id is derived from what the sweep computes (model, settings, slice), so merging
 * again finds the same run and copies only what it lacks: idempotent, and an interrupted merge is
 * finished by running it again.
 */

export interface MergeOptions {
  /** Shard databases; each holds one or more shard runs (a shard re-run after a crash adds one). */
  files: readonly string[];
  /** Keep going when the shards do not cover the slice: the run is marked failed with the missing ordinals. */
  allowPartial?: boolean;
  /**
   * true (default): check coverage and record how the run ended. false: copy what is done and leave
   * the run computing, owned by this store (the devices runner's merges as the shards go).
   */
  finish?: boolean;
}

export interface MergeReport {
  runId: string;
  status: RunStatus;
  examplesPlanned: number;
  examplesDone: number;
  /** Examples copied by this merge (0 when merging again changed nothing). */
  copied: number;
  /** Ordinals of the slice no shard has finished, ascending. */
  missing: number[];
  shards: { file: string; runId: string; index: number; count: number; status: RunStatus; examplesDone: number }[];
}

interface ShardRun {
  file: string;
  store: ResultStore;
  run: RunDetail;
  shard: Shard;
  /** Ordinals this shard run has finished (every technique and layer stored). */
  done: Set<number>;
  examplesDigest: string;
}

/** What the shards of one sweep must agree on, with the words that name it when they do not. */
const IDENTITY: { what: string; of(s: ShardRun): unknown }[] = [
  { what: 'model (checkpoint identity, compute dtype, device, numerics version)', of: (s) => s.run.modelKey },
  { what: 'code version', of: (s) => s.run.codeVersion },
  { what: 'protocol', of: (s) => s.run.protocol },
  { what: 'techniques', of: (s) => s.run.resolvedTechniques },
  { what: 'layers', of: (s) => s.run.layers },
  { what: 'top-k', of: (s) => s.run.k },
  { what: 'strategy', of: (s) => s.run.strategy },
  { what: 'dataset files', of: (s) => s.run.files },
  { what: 'shard count', of: (s) => s.shard.count },
  { what: 'planned examples (tokens, positions and tracked tokens of the slice)', of: (s) => s.examplesDigest },
];

export function mergeShards(into: ResultStore, opts: MergeOptions): MergeReport {
  const shards = openShards(into, opts.files);
  try {
    return mergeOpened(into, shards, opts);
  } finally {
    for (const store of new Set(shards.map((s) => s.store))) store.close();
  }
}

function mergeOpened(into: ResultStore, shards: ShardRun[], opts: MergeOptions): MergeReport {
  const finish = opts.finish ?? true;
  const first = shards[0];
  for (const s of shards.slice(1)) {
    for (const { what, of } of IDENTITY) {
      const [a, b] = [JSON.stringify(of(first)), JSON.stringify(of(s))];
      if (a !== b) {
        throw new LogitscopeError('shards_mismatch', `${describe(s)} is not a shard of the same sweep as ${describe(first)}: its ${what} differs (${differs(of(first), of(s))}); no run was written`, s.file);
      }
    }
  }
  const runId = mergedRunId(first);
  const total = first.run.examplesPlanned ?? 0;
  const existing = into.runIdsStartingWith(runId, 1).length > 0 ? into.getRun(runId) : undefined;
  const targetDone = new Set(existing ? into.runExamples(runId).filter((e) => e.done).map((e) => e.ordinal) : []);

  const covered = new Set(targetDone);
  for (const s of shards) for (const o of s.done) covered.add(o);
  const missingBefore = range(total).filter((o) => !covered.has(o));
  if (finish && missingBefore.length > 0 && !opts.allowPartial) throw incomplete(missingBefore, first.shard.count, total, 'merge with --allow-partial to keep what is there');

  const toCopy = shards.map((s) => [...s.done].filter((o) => !targetDone.has(o)));
  const nothingNew = toCopy.every((c) => c.length === 0);
  const report = (copied: number): MergeReport => {
    const run = into.getRun(runId);
    const done = new Set(into.runExamples(runId).filter((e) => e.done).map((e) => e.ordinal));
    return {
      runId, status: run.status, examplesPlanned: total, examplesDone: done.size, copied,
      missing: range(total).filter((o) => !done.has(o)),
      shards: shards.map((s) => ({ file: s.file, runId: s.run.id, index: s.shard.index, count: s.shard.count, status: s.run.status, examplesDone: s.done.size })),
    };
  };
  // Merging again: a run that has ended and gains nothing is left exactly as it is.
  if (existing && nothingNew && (into.isOwnedAndRunning(runId) || !finish || !['running', 'interrupted'].includes(existing.status))) return report(0);

  if (!existing) {
    const { shard: _, ...dataset } = first.run.dataset;
    into.createRun({
      id: runId,
      name: first.run.name ?? undefined,
      model: { key: first.run.modelKey, path: first.run.modelPath, info: first.run.model },
      files: first.run.files,
      datasetStats: dataset,
      protocol: first.run.protocol,
      techniques: first.run.resolvedTechniques,
      layers: first.run.layers,
      k: first.run.k,
      strategy: first.run.strategy,
      codeVersion: first.run.codeVersion,
      spec: first.run.spec ?? undefined,
      examplesPlanned: total,
      // The copied rows are the merged run's own: rows the database already holds for the same
      // cells (an unsharded run, an earlier merge) are neither overwritten nor read instead.
      ownsRows: true,
    });
  } else if (!into.isOwnedAndRunning(runId)) {
    into.resumeRun(runId); // run_busy if another live process is merging into it
  }
  // Again after an interrupted merge: the examples are written in their own transaction after the run.
  if (into.runExamples(runId).length < total) into.setRunExamples(runId, first.store.runExamples(first.run.id));

  let copied = 0;
  toCopy.forEach((ordinals, i) => (copied += copyExamples(into, runId, shards[i], new Set(ordinals), targetDone)));
  if (finish) {
    const missing = into.runExamples(runId).filter((e) => !e.done).map((e) => e.ordinal);
    const wallMs = Math.max(0, ...shards.map((s) => s.run.timings.wallMs ?? 0));
    const computeMs = shards.reduce((sum, s) => sum + (s.run.timings.computeMs ?? 0), 0);
    into.finishRun(runId, missing.length === 0
      ? { status: 'completed', timings: { wallMs, computeMs } }
      : { status: 'failed', timings: { wallMs, computeMs }, error: serializedIncomplete(missing, first.shard.count, total) });
  }
  return report(copied);
}

/** Copies a shard run's finished examples that the merged run lacks, a page per transaction. */
function copyExamples(into: ResultStore, runId: string, s: ShardRun, ordinals: Set<number>, targetDone: Set<number>): number {
  if (ordinals.size === 0) return 0;
  let page: StoredExample[] = [];
  let copied = 0;
  const flush = () => {
    if (page.length > 0) into.saveBatch(runId, rowsFromReadouts(page, s.run.resolvedTechniques));
    page = [];
  };
  for (const stored of s.store.iterateResults(s.run.id, { fromOrdinal: Math.min(...ordinals) })) {
    const { example } = stored;
    if (!ordinals.has(example.ordinal) || targetDone.has(example.ordinal)) continue;
    page.push(stored);
    targetDone.add(example.ordinal); // another shard run (a retry) holding it too need not copy it again
    copied++;
    if (page.length >= 64) flush();
  }
  flush();
  return copied;
}

/** Every shard run in the given databases, read-only; at least one, or a coded error naming the file. */
function openShards(into: ResultStore, files: readonly string[]): ShardRun[] {
  if (files.length === 0) throw new LogitscopeError('argument_invalid', 'give at least one shard database to merge', 'files');
  const target = realpath(into.file);
  const shards: ShardRun[] = [];
  const opened: ResultStore[] = [];
  try {
    for (const file of new Set(files.map((f) => path.resolve(f)))) {
      if (realpath(file) === target) throw new LogitscopeError('argument_invalid', `${file} is the database merged into; merge the shards into another file`, file);
      const store = openShard(file);
      opened.push(store);
      const found = store.listRuns().flatMap((item) => {
        const run = store.getRun(item.id);
        const shard = shardOfRun(run.dataset);
        if (!shard) return [];
        const examples = store.runExamples(run.id);
        const digest = createHash('sha256');
        for (const e of examples) digest.update(`${e.ordinal}:${e.exampleKey}:${e.track ?? ""}\n`);
        return [{ file, store, run, shard, done: new Set(examples.filter((e) => e.done).map((e) => e.ordinal)), examplesDigest: digest.digest('hex') }];
      });
      if (found.length === 0) throw new LogitscopeError('shards_mismatch', `${file} holds no shard run (make one with \`logitscope sweep --shard i/N --db ${path.basename(file)}\`)`, file);
      shards.push(...found);
    }
  } catch (e) {
    for (const store of opened) store.close();
    throw e;
  }
  return shards;
}

/**
 * Read-only, unless the file needs what only a writer may do: a shard whose process was killed
 * mid-write leaves a write-ahead log that must be recovered before anyone can read it, and a
 * read-only connection cannot recover it. Recovery changes no content.
 */
function openShard(file: string): ResultStore {
  try {
    return ResultStore.open(file, { readonly: true });
  } catch (e) {
    if (!fs.existsSync(file)) throw e;
    try {
      return ResultStore.open(file);
    } catch {
      throw e;
    }
  }
}

/** A UUID-shaped id from everything the shards agree on: the same sweep always merges into the same run. */
function mergedRunId(s: ShardRun): string {
  const h = createHash('sha256').update('logitscope-merged-run-v1\0');
  for (const { what, of } of IDENTITY) if (what !== 'shard count') h.update(`${what}=${JSON.stringify(of(s))}\n`);
  const hex = h.digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function serializedIncomplete(missing: readonly number[], shardCount: number, total: number): SerializedError {
  const e = incomplete(missing, shardCount, total, 'resume this run, or re-run those shards and merge again');
  return { code: e.code, message: e.message };
}

function incomplete(missing: readonly number[], shardCount: number, total: number, advice: string): LogitscopeError {
  const shards = [...new Set(missing.map((o) => o % shardCount))].sort((a, b) => a - b).map((i) => `${i}/${shardCount}`);
  return new LogitscopeError(
    'shards_incomplete',
    `${missing.length} of ${total} examples are missing: ordinals ${ranges(missing)} (of shard${shards.length > 1 ? 's' : ''} ${shards.join(', ')}); ${advice}`,
    'shards',
  );
}

function describe(s: ShardRun): string {
  return `shard ${s.shard.index}/${s.shard.count} (run ${s.run.id.slice(0, 8)} in ${s.file})`;
}

/** The first difference between two recorded values, short enough for one line. */
function differs(a: unknown, b: unknown): string {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    const key = keys.find((k) => JSON.stringify((a as Record<string, unknown>)[k]) !== JSON.stringify((b as Record<string, unknown>)[k]));
    if (key) return `${key}: ${short((a as Record<string, unknown>)[key])} vs ${short((b as Record<string, unknown>)[key])}`;
  }
  return `${short(a)} vs ${short(b)}`;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function realpath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}
