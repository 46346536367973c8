import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deserializeError, LogitscopeError, serializeError, type SerializedError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { SweepProgress } from '../sweep/run-sweep.ts';
import { mergeShards, serializedIncomplete, type MergeReport } from './merge.ts';
import type { DeviceKind } from '../protocol/device.ts';
import type { ShardJob, ShardMessage, ShardSweepRequest } from '../protocol/shards.ts';

/**
 * A sweep split across the devices of one box: one shard per device, each a child process with
 * its own results database (src-main/shard-worker.ts), merged into the caller's store as they go, so the
 * caller sees one run with one progress stream. A shard whose process dies is started once more
 * (resuming its shard run); if it dies again, the run ends failed with the ordinals still missing,
 * and can be resumed like any failed run.
 */

export interface DevicesSweepOptions {
  /** The database the shards are merged into. */
  store: ResultStore;
  /** One shard per entry: cpu, cuda, or cuda:N (that child sees only GPU N, as its cuda). */
  devices: readonly string[];
  modelDir: string;
  dtype?: 'float32' | 'float16';
  /** The sweep as asked, without devices. */
  request: ShardSweepRequest;
  cacheRoot?: string;
  signal: AbortSignal;
  onRunCreated(runId: string): void;
  onProgress(p: SweepProgress): void;
}

export interface DevicesSweepResult {
  runId: string;
  status: 'completed' | 'cancelled' | 'failed';
  error?: SerializedError;
}

/** tsx's loader by its own location: `--import tsx` alone would be looked up from the caller's working directory. */
const TSX = import.meta.resolve('tsx');
/** The shard process's entry, started by path, not imported: it is a front, above this layer. */
const SHARD_WORKER = fileURLToPath(new URL('../shard-worker.ts', import.meta.url));
/** How often the shards' new results are merged (each merge also makes one progress event). */
const MERGE_EVERY_MS = 500;

interface ShardState {
  file: string;
  device: string;
  runId?: string;
  attempts: number;
  progress?: Extract<ShardMessage, { type: 'progress' }>;
  error?: SerializedError;
  stderr: string;
  live?: ReturnType<typeof spawn>;
}

export async function sweepOnDevices(o: DevicesSweepOptions): Promise<DevicesSweepResult> {
  const started = performance.now();
  const count = o.devices.length;
  // Beside the merged database, one folder per sweep: kept when the run does not complete, for inspection and resume.
  const dir = `${o.store.file}.shards-${randomUUID().slice(0, 8)}`;
  fs.mkdirSync(dir, { recursive: true });
  const shards: ShardState[] = o.devices.map((device, i) => ({ file: path.join(dir, `shard-${i}-of-${count}.db`), device, attempts: 0, stderr: '' }));
  let runId: string | undefined;
  let mergeTimer: NodeJS.Timeout | undefined;
  let mergeError: unknown; // from the last merge only

  // One progress stream: the merged run's counts and curves, with the shards' speeds added up.
  const progress = (report: MergeReport) => {
    const live = shards.map((s) => s.progress).filter((p) => p !== undefined);
    const throughput = live.some((p) => p.throughput !== null) ? live.reduce((sum, p) => sum + (p.throughput ?? 0), 0) : null;
    o.onProgress({
      examplesDone: report.examplesDone,
      examplesTotal: report.examplesPlanned,
      examplesFromCache: live.reduce((sum, p) => sum + p.examplesFromCache, 0),
      throughput,
      etaSeconds: throughput ? (report.examplesPlanned - report.examplesDone) / throughput : null,
      summary: o.store.summary(report.runId),
    });
  };
  const merge = (emit = true): MergeReport | undefined => {
    mergeTimer = undefined;
    const files = shards.filter((s) => s.runId).map((s) => s.file);
    if (files.length === 0 || mergeError) return undefined;
    try {
      const report = mergeShards(o.store, { files, finish: false });
      // The caller learns the run id from onRunCreated: the first progress comes from a later merge.
      if (runId && emit) progress(report);
      else o.onRunCreated((runId = report.runId));
      return report;
    } catch (e) {
      // A shard's file can be briefly unreadable (a retry is starting on it): the next merge tries
      // again. The last merge, after every shard has stopped, reports what is still wrong.
      if (emit) return undefined;
      mergeError = e;
    }
  };
  let stopped = false; // every shard has exited: only the last merge below remains
  const scheduleMerge = () => !stopped && (mergeTimer ??= setTimeout(() => merge(), MERGE_EVERY_MS));

  const runShard = async (s: ShardState, index: number): Promise<void> => {
    while (s.attempts < 2 && !o.signal.aborted) {
      s.attempts++;
      s.error = undefined;
      const code = await runChild(s, { ...o, index, count }, scheduleMerge);
      if (code === 0 || o.signal.aborted) return;
      // Died, or failed: retried once; a retry resumes the shard run the first attempt made.
    }
  };
  const abort = () => shards.forEach((s) => s.live?.kill('SIGTERM'));
  o.signal.addEventListener('abort', abort);
  try {
    await Promise.all(shards.map(runShard));
  } finally {
    o.signal.removeEventListener('abort', abort);
    stopped = true;
    clearTimeout(mergeTimer);
  }
  const last = merge(false);
  if (mergeError) {
    // The shard databases are kept; `runs merge` can finish the job once the cause is fixed.
    if (runId) {
      try {
        o.store.finishRun(runId, { status: 'failed', error: serializeError(mergeError) });
      } catch {
        // The merged database itself is what failed; the run reads as interrupted.
      }
    }
    throw mergeError;
  }
  await new Promise((resolve) => setImmediate(resolve)); // lets a caller that just learned the run id subscribe
  if (last) progress(last);
  if (!runId) {
    // No shard got as far as creating its run (a bad dataset, an unloadable model): that error is the sweep's.
    fs.rmSync(dir, { recursive: true, force: true });
    const first = shards.find((s) => s.error) ?? shards[0];
    throw first.error ? deserializeError(first.error) : new LogitscopeError('engine_failed', `the shard on ${first.device} exited before starting: ${first.stderr.trim().slice(-500)}`, 'devices');
  }
  const missing = o.store.runExamples(runId).filter((e) => !e.done).map((e) => e.ordinal);
  const timings = { wallMs: performance.now() - started };
  if (o.signal.aborted) {
    o.store.finishRun(runId, { status: 'cancelled', timings });
    return { runId, status: 'cancelled' };
  }
  if (missing.length > 0) {
    const failed = shards.filter((s) => s.error).map((s) => `the shard on ${s.device} failed twice (${s.error!.code}: ${s.error!.message}; its database is ${s.file})`);
    const base = serializedIncomplete(missing, count, o.store.getRun(runId).examplesPlanned ?? missing.length);
    const error = { ...base, message: `${base.message}${failed.length ? `. ${failed.join('; ')}` : ''}` };
    o.store.finishRun(runId, { status: 'failed', timings, error });
    return { runId, status: 'failed', error };
  }
  o.store.finishRun(runId, { status: 'completed', timings });
  fs.rmSync(dir, { recursive: true, force: true }); // every result is in the merged run now
  return { runId, status: 'completed' };
}

/** Runs one attempt of a shard's child process; resolves to its exit code (non-zero when it died). */
function runChild(s: ShardState, o: DevicesSweepOptions & { index: number; count: number }, onNews: () => void): Promise<number> {
  // cuda:N becomes that child's only visible GPU, so its cuda session lands on GPU N whatever the engine's device strings.
  const [kind, gpu] = s.device.split(':');
  const job: ShardJob = {
    db: s.file,
    cacheRoot: o.cacheRoot,
    modelDir: o.modelDir,
    device: kind as DeviceKind,
    dtype: o.dtype,
    request: { ...o.request, shard: { index: o.index, count: o.count } },
    ...(s.runId && { resume: s.runId }),
  };
  const env = { ...process.env, ELECTRON_RUN_AS_NODE: '1', ...(gpu !== undefined && { CUDA_VISIBLE_DEVICES: gpu }) };
  const child = spawn(process.execPath, ['--import', TSX, SHARD_WORKER, JSON.stringify(job)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  s.live = child;
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const m = JSON.parse(line) as ShardMessage;
      if (m.type === 'created') s.runId = m.runId;
      else if (m.type === 'progress') s.progress = m;
      else if (m.type === 'finished' && m.error) s.error = m.error;
      onNews();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (s.stderr = (s.stderr + chunk).slice(-4000)));
  return new Promise((resolve) => {
    child.on('error', (e) => {
      s.error = { code: 'engine_failed', message: `could not start the shard process: ${e.message}` };
      resolve(1);
    });
    child.on('close', (code, signal) => {
      s.live = undefined;
      if (code !== 0 && !s.error) s.error = { code: 'engine_failed', message: `the shard process on ${s.device} died (${signal ?? `exit ${code}`}): ${s.stderr.trim().slice(-300)}` };
      resolve(code ?? 1);
    });
  });
}
