import type { Shard } from '../protocol/shards.ts';
import type { SweepCache } from '../sweep/run-sweep.ts';

/** The run ordinals a shard computes, in order. */
export function shardOrdinals(total: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let o = shard.index; o < total; o += shard.count) out.push(o);
  return out;
}

/** The shard recorded in a run's dataset provenance, if it is one. */
export function shardOfRun(dataset: Record<string, unknown>): Shard | undefined {
  const s = dataset.shard as Partial<Shard> | undefined;
  return s && Number.isInteger(s.index) && Number.isInteger(s.count) ? { index: s.index!, count: s.count! } : undefined;
}

/**
 * The run's cache as a shard's sweep sees it: the sweep loop numbers its plan's examples 0..m-1,
 * the run numbers them by their place in the whole slice, so ordinals are translated both ways.
 */
export function shardCache(cache: SweepCache, runOrdinals: readonly number[]): SweepCache {
  const local = new Map(runOrdinals.map((o, i) => [o, i]));
  return {
    async lookup(ordinals) {
      const found = await cache.lookup(ordinals.map((i) => runOrdinals[i]));
      return new Map([...found].map(([o, r]) => [local.get(o)!, r]));
    },
    save(batch) {
      return cache.save(batch.map((b) => ({ ...b, ordinal: runOrdinals[b.ordinal] })));
    },
  };
}
