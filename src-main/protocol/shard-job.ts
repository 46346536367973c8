/**
 * What a devices sweep (scale/devices.ts) and its shard processes (src-main/shard-worker.ts, a front
 * beside the CLI) say to each other: the job a shard is started with, as JSON in its argv, and the
 * lines it prints back. Below the API and scale/, so the front and scale/ share it without a circle.
 */
import type { SerializedError } from '../errors.ts';
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
  /** A retry: the shard run the first attempt created, to finish rather than start over. */
  resume?: string;
}

export type ShardMessage =
  | { type: 'created'; runId: string }
  | { type: 'progress'; examplesDone: number; examplesTotal: number; examplesFromCache: number; throughput: number | null }
  | { type: 'finished'; status: string; error: SerializedError | null };
