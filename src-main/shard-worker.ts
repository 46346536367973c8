/**
 * One shard of a devices sweep (scale/devices.ts), as a child process: a Lab over the shard's own
 * database, the model loaded on this child's device, and the shard swept (or resumed, on a retry).
 * It reports to its parent on stdout, one JSON object per line (protocol/shards.ts ShardMessage);
 * everything else it prints goes to stderr. SIGTERM cancels after the finished batches are stored.
 *
 * Started as `node --import tsx shard-worker.ts JOB` with the ShardJob as JSON.
 */
import { Lab } from './api/lab.ts';
import type { SweepRequest } from './api/contract.ts';
import { serializeError } from './errors.ts';
import type { ShardJob, ShardMessage } from './protocol/shards.ts';

const send = (m: ShardMessage) => process.stdout.write(`${JSON.stringify(m)}\n`);

async function main(job: ShardJob): Promise<number> {
  const lab = await Lab.open({ dbPath: job.db, cacheRoot: job.cacheRoot });
  let runId: string | undefined;
  let cancelled = false;
  process.on('SIGTERM', () => {
    cancelled = true;
    if (runId) void lab.call('sweep.cancel', { runId });
  });
  try {
    await lab.call('model.load', { dir: job.modelDir, device: job.device, dtype: job.dtype });
    lab.onEvent((name, payload) => {
      if (name !== 'sweep.progress') return;
      const { progress: p } = payload as { progress: { examplesDone: number; examplesTotal: number; examplesFromCache: number; throughput: number | null } };
      send({ type: 'progress', examplesDone: p.examplesDone, examplesTotal: p.examplesTotal, examplesFromCache: p.examplesFromCache, throughput: p.throughput });
    });
    // The shard's database is its own (a fresh folder per devices sweep), so a run already in it is an
    // earlier attempt's, even where the job names none: that attempt was killed after creating its run
    // but before its 'created' line reached the parent (perhaps before its slice was stored too, which
    // the resume stores again). Starting a second run beside it would leave two shard runs in one file,
    // one without its slice, and the merge would refuse them (shards_mismatch, planned examples).
    const earlier = job.resume ?? (await lab.call('runs.list', {})).at(0)?.id;
    ({ runId } = earlier
      ? await lab.call('sweep.resume', { runId: earlier, batchSize: job.request.batchSize })
      : await lab.call('sweep.start', job.request as SweepRequest)); // checked by the Lab like any request
    send({ type: 'created', runId });
    if (cancelled) await lab.call('sweep.cancel', { runId });
    await lab.settled(runId);
    const run = await lab.call('runs.get', { runId });
    send({ type: 'finished', status: run.status, error: run.error });
    return run.status === 'completed' ? 0 : run.status === 'cancelled' ? 143 : 1;
  } catch (e) {
    send({ type: 'finished', status: 'failed', error: serializeError(e) });
    return 1;
  } finally {
    await lab.close();
  }
}

process.exitCode = await main(JSON.parse(process.argv[2]) as ShardJob);
