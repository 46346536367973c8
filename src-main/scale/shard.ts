import { LogitscopeError } from '../errors.ts';
import type { SweepCache } from '../sweep/run-sweep.ts';

/**
 * One shard of a sweep: the examples whose ordinal ≡ index (mod count) of exactly the run the
 * unsharded sweep would make. Striding rather than contiguous blocks keeps every shard's mix of
 * example lengths (and so its speed) alike, whatever order the slice is in.
 */
export interface Shard {
  index: number;
  count: number;
}

/** "i/N" as typed on the command line (0 ≤ i < N); anything else is a coded error naming the option. */
export function parseShard(text: string, field = '--shard'): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new LogitscopeError('argument_invalid', `${field} takes i/N (shard i of N, counting from 0), e.g. 0/4; got "${text}"`, field);
  const [index, count] = [Number(m[1]), Number(m[2])];
  if (count < 1) throw new LogitscopeError('argument_invalid', `${field}: N must be at least 1, got "${text}"`, field);
  if (index >= count) throw new LogitscopeError('argument_invalid', `${field}: i must be below N (shards are numbered 0..${count - 1}), got "${text}"`, field);
  return { index, count };
}

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
