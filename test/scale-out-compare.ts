/**
 * How the scale-out tests compare a merged run's export with the unsharded run's. The engine's
 * float32 numbers can differ in their last bits with which examples share a batch (the padded
 * length changes the kernels' accumulation order), and a shard batches other examples together than
 * the unsharded sweep does. So the structure, every id, count and string must be equal, and every
 * non-integer number equal within RELATIVE (about 80 float32 ulps), or within ABSOLUTE for numbers
 * that are themselves rounding noise around 0 (the parity check's deviations).
 */
export const RELATIVE = 1e-5;
export const ABSOLUTE = 1e-6;

/** Paths where `a` and `b` differ beyond that, with both values; empty when they agree. */
export function differences(a: unknown, b: unknown, path = '$'): string[] {
  if (typeof a === 'number' && typeof b === 'number' && !(Number.isInteger(a) && Number.isInteger(b))) {
    return Math.abs(a - b) <= Math.max(RELATIVE * Math.max(Math.abs(a), Math.abs(b)), ABSOLUTE) ? [] : [`${path}: ${a} vs ${b}`];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [`${path}: length ${a.length} vs ${b.length}`];
    return a.flatMap((x, i) => differences(x, b[i], `${path}[${i}]`));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
