import { LogitscopeError } from '../errors.ts';
import type { PresetName, ProtocolSettings } from './spec.ts';

/** PROTOCOL.md's two presets, setting for setting. */
export const PRESETS: Record<PresetName, ProtocolSettings> = {
  // The seed: the first 2000 records in file order, short ones only, BOS prepended (the config's
  // bos_token_id, or the tokenizer's own BOS where it always adds one) and counted when positions
  // are drawn (engine/bos.ts).
  logitscope: {
    preset: 'logitscope',
    poolStart: 0,
    poolEnd: 2000,
    filter: { maxWords: 200, maxChars: 1600 },
    shuffleSeed: null,
    evalStart: 0,
    evalEnd: null,
    bos: true,
    positionSeed: 0,
  },
  // The paper: a 200K-record pool, filtered, shuffled with seed 42; evaluation = items 10000..11999.
  // No BOS of its own: a tokenizer that always adds one (Llama, Gemma) keeps it at position 0, and
  // positions are drawn over the text's tokens only.
  patchscopes: {
    preset: 'patchscopes',
    poolStart: 0,
    poolEnd: 200_000,
    filter: { maxWords: 250, maxChars: 2000 },
    shuffleSeed: 42,
    evalStart: 10_000,
    evalEnd: 12_000,
    bos: false,
    positionSeed: 0,
  },
};

/** A preset with the user's overrides applied and checked; this is what a run records. */
export function resolveProtocol(preset: PresetName, overrides: Partial<Omit<ProtocolSettings, 'preset'>> = {}): ProtocolSettings {
  const base = PRESETS[preset];
  if (!base) throw new LogitscopeError('argument_invalid', `unknown preset "${preset}" (choose logitscope or patchscopes)`, 'preset');
  // An override given as undefined (an option left out) keeps the preset's value, in the filter too.
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const p: ProtocolSettings = { ...base, ...defined(overrides), filter: { ...base.filter, ...defined(overrides.filter ?? {}) } };
  const bad: string[] = [];
  const natural = (v: number | null | undefined, name: string) => {
    if (v != null && (!Number.isInteger(v) || v < 0)) bad.push(`${name} must be a non-negative integer, got ${v}`);
  };
  natural(p.poolStart, 'poolStart');
  natural(p.poolEnd, 'poolEnd');
  natural(p.evalStart, 'evalStart');
  natural(p.evalEnd, 'evalEnd');
  natural(p.shuffleSeed, 'shuffleSeed');
  natural(p.positionSeed, 'positionSeed');
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1)) bad.push(`limit must be a positive integer, got ${p.limit}`);
  if (p.poolEnd <= p.poolStart) bad.push(`poolEnd (${p.poolEnd}) must be greater than poolStart (${p.poolStart})`);
  if (p.evalEnd !== null && p.evalEnd <= p.evalStart) bad.push(`evalEnd (${p.evalEnd}) must be greater than evalStart (${p.evalStart})`);
  if (bad.length > 0) throw new LogitscopeError('argument_invalid', bad.join('; '), 'protocol');
  return p;
}
