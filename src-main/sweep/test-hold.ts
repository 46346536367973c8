import fs from 'node:fs';
import type { SweepCache } from './run-sweep.ts';

/**
 * A test's gate, so that a test stops or kills a sweep at a known point rather than by luck (a
 * sweep of a tiny model can finish between two polls). With LOGITSCOPE_TEST_HOLD=<examples>, or
 * <examples>@shard<index> for one shard of a devices sweep, a stored sweep waits once this process
 * has stored that many examples (0: before its first batch): it writes the process id to
 * `<database>.held` and takes no further batch until it is cancelled (then it stops as a cancelled
 * sweep does) or killed. LOGITSCOPE_TEST_HOLD=run (or run@shard<index>) holds a new sweep between
 * creating its run and storing its slice, before anyone is told of the run. Unset, nothing changes.
 */
export interface HoldPlace {
  dbFile: string;
  shardIndex?: number;
  signal?: AbortSignal;
}

/** `stored`: the examples this process has stored, or 'run' where a new run exists without its slice. */
export async function holdForTest(at: HoldPlace, stored: number | 'run'): Promise<void> {
  const hold = process.env.LOGITSCOPE_TEST_HOLD?.match(/^(\d+|run)(?:@shard(\d+))?$/);
  if (!hold || (hold[2] !== undefined && Number(hold[2]) !== at.shardIndex)) return;
  if (hold[1] === 'run' ? stored !== 'run' : stored === 'run' || stored < Number(hold[1])) return;
  fs.writeFileSync(`${at.dbFile}.held`, String(process.pid));
  const keepAlive = setInterval(() => {}, 2 ** 30); // a pending promise alone would let the process exit
  await new Promise<void>((resolve) => (at.signal?.aborted ? resolve() : at.signal?.addEventListener('abort', () => resolve(), { once: true })));
  clearInterval(keepAlive);
}

/** `cache` with the hold after each batch it saves; `cache` itself when no hold is asked for. */
export function withTestHold(cache: SweepCache, at: HoldPlace): SweepCache {
  if (process.env.LOGITSCOPE_TEST_HOLD === undefined) return cache;
  let stored = 0;
  return {
    lookup: (ordinals) => cache.lookup(ordinals),
    save: async (batch) => {
      await cache.save(batch);
      await holdForTest(at, (stored += batch.length));
    },
  };
}
