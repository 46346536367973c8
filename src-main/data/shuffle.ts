import { LogitscopeError } from '../errors.ts';

/**
 * mulberry32: a 32-bit seeded generator, small and fast, good enough for shuffling and sampling.
 * Returns floats in [0, 1) with 2^-32 resolution.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A new array holding `items` in a seeded random order (Fisher–Yates driven by mulberry32).
 * The same seed always gives the same order here, but NOT numpy's or Python's order for that
 * seed: "shuffled with seed 42" picks the same kind of sample as the paper, not the same records.
 * For pools up to millions of items the 2^-32 float resolution adds no visible bias.
 */
export function shuffleSeeded<T>(items: readonly T[], seed: number): T[] {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new LogitscopeError('argument_invalid', `seed must be an integer in 0..2^32-1, got ${seed}`, 'seed');
  }
  const random = mulberry32(seed);
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
