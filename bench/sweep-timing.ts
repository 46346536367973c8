/**
 * What the sweep benches share: the text they sweep, the sweep spec, and the timing of the fast and
 * naive strategies on one loaded engine (bench/sweep-bench.ts on GPT-J, bench/family-bench.ts on
 * every family), so their figures are measured the same way.
 */
import fs from 'node:fs';
import { mulberry32 } from '../src-main/data/shuffle.ts';
import type { Engine } from '../src-main/engine/engine.ts';
import { resolveProtocol } from '../src-main/protocol/presets.ts';
import type { TechniqueSpec } from '../src-main/protocol/techniques.ts';
import { runSweep, type SweepPlan } from '../src-main/sweep/run-sweep.ts';

const WORDS = (
  'time year people way day man thing woman life child world school state family student group country problem hand part place case week ' +
  'company system program question work government number night point home water room mother area money story fact month lot right study ' +
  'book eye job word business issue side kind head house service friend father power hour game line end member law car city community name'
).split(' ');

/** `count` JSONL records of `words` common English words each, the same for the same arguments. */
export function writeBenchText(file: string, count: number, words: number): void {
  const rand = mulberry32(7);
  const lines = Array.from({ length: count }, () => JSON.stringify({ text: Array.from({ length: words }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') }));
  fs.writeFileSync(file, lines.join('\n'));
}

/** The fast sweep of `techniques` over every layer of the first `count` records, with the logitscope preset (no length filter). */
export function benchSpec(modelDir: string, data: string, count: number, techniques: readonly TechniqueSpec[]) {
  return {
    modelDir,
    device: 'cpu' as const,
    files: [data],
    protocol: resolveProtocol('logitscope', { limit: count, filter: { maxWords: 100_000, maxChars: 1_000_000 } }),
    techniques: [...techniques],
    layers: null,
    k: 10,
    strategy: 'fast' as const,
  };
}

export async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return (performance.now() - t) / 1000;
}

/** Average tokens per example: whole records, and run up to the drawn position. */
export function planLengths(plan: SweepPlan): { full: number; run: number } {
  const n = plan.examples.length;
  return { full: plan.examples.reduce((s, e) => s + e.tokens.length, 0) / n, run: plan.examples.reduce((s, e) => s + e.position + 1, 0) / n };
}

/**
 * The fast sweep over the whole plan after a two-example warm-up (which pages in the weights), and
 * how its time splits across the engine's graphs (engine.timings, in seconds).
 */
export async function timeFast(engine: Engine, plan: SweepPlan): Promise<{ total: number; perExample: number; split: Record<string, number> }> {
  await runSweep(engine, { ...plan, examples: plan.examples.slice(0, 2) });
  const before = { ...engine.timings };
  const total = await seconds(() => runSweep(engine, plan));
  const split = Object.fromEntries(Object.entries(engine.timings).map(([g, ms]) => [g, (ms - before[g as keyof typeof before]) / 1000]));
  return { total, perExample: total / plan.examples.length, split };
}

/** The naive strategy on the first `count` examples only (it is slow by design), per example. */
export async function timeNaive(engine: Engine, plan: SweepPlan, count: number): Promise<{ total: number; examples: number; perExample: number }> {
  const slice = { ...plan, examples: plan.examples.slice(0, count), strategy: 'naive' as const };
  const total = await seconds(() => runSweep(engine, slice));
  return { total, examples: slice.examples.length, perExample: total / slice.examples.length };
}
