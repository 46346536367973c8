/**
 * Shards as every layer names them: a shard i/N, its parser and missing ordinals as text; and what
 * a devices sweep (scale/devices.ts) and its shard processes (src-main/shard-worker.ts, a front
 * beside the CLI) say to each other: the job a shard starts with, as JSON in its argv, and the
 * lines it prints back. Below scale/ and the API, so the fronts and scale/ share it without a circle.
 */
import { LogitscopeError, type SerializedError } from '../errors.ts';
import type { DeviceKind } from './device.ts';

/** The API's sweep request as this layer sees it: passed through with the shard it is given. */
export interface ShardSweepRequest {
  shard?: { index: number; count: number };
  batchSize?: number;
  [setting: string]: unknown;
}

export interface ShardJob {
  db: string;
  cacheRoot?: string;
  modelDir: string;
  device: DeviceKind;
  dtype?: 'float32' | 'float16';
  /** The sweep as the API asks for it (api/contract.ts SweepRequest), shard included: carried here, read by the Lab. */
  request: ShardSweepRequest;
  /** A retry: the shard run the first attempt created, to finish rather than start over (the worker also finds one it was not told of). */
  resume?: string;
}

export type ShardMessage =
  | { type: 'created'; runId: string }
  | { type: 'progress'; examplesDone: number; examplesTotal: number; examplesFromCache: number; throughput: number | null }
  | { type: 'finished'; status: string; error: SerializedError | null };

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

/** 1,2,3,7,9,10 -> "1-3, 7, 9-10", cut after 20 ranges. */
export function ranges(ordinals: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ordinals.length; ) {
    let j = i;
    while (j + 1 < ordinals.length && ordinals[j + 1] === ordinals[j] + 1) j++;
    parts.push(i === j ? `${ordinals[i]}` : `${ordinals[i]}-${ordinals[j]}`);
    i = j + 1;
  }
  return parts.length > 20 ? `${parts.slice(0, 20).join(', ')}, … (${parts.length - 20} more ranges)` : parts.join(', ');
}
