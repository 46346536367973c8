/** Gives a sweep's tuned-lens technique its fitted lens: found in the cache, or fitted now. */
import type { Engine } from '../engine/engine.ts';
import type { ProtocolSettings } from '../protocol/spec.ts';
import type { ResolvedTechnique } from '../protocol/techniques.ts';
import { ensureTunedLens, type FitProgress } from './fit.ts';
import { LogitscopeError } from '../errors.ts';
import { lensRecordOf, listLenses, resolveLensSettings } from './lens.ts';

export async function attachLenses(
  engine: Engine,
  techniques: ResolvedTechnique[],
  o: { protocol: ProtocolSettings; files: string[]; evalRecords: ReadonlySet<number>; signal?: AbortSignal; onProgress?(p: FitProgress): void },
): Promise<ResolvedTechnique[]> {
  const out: ResolvedTechnique[] = [];
  for (const t of techniques) {
    if (t.kind !== 'tuned_lens' || t.lens) {
      out.push(t);
      continue;
    }
    const settings = resolveLensSettings({ protocol: o.protocol, files: o.files, modelIdentity: engine.info.identity, computeDtype: engine.info.computeDtype, overrides: t.overrides, index: techniques.indexOf(t) });
    const { file } = await ensureTunedLens(engine, settings, { signal: o.signal, onProgress: o.onProgress, excludeRecords: o.evalRecords });
    out.push({ ...t, lens: lensRecordOf(file) });
  }
  return out;
}

/**
 * For one-prompt extraction (no dataset): the lens most recently fitted for the loaded model, or a
 * clear error saying how to get one.
 */
export function latestLensFor(engine: Engine, techniques: ResolvedTechnique[]): ResolvedTechnique[] {
  return techniques.map((t) => {
    if (t.kind !== 'tuned_lens' || t.lens) return t;
    const found = listLenses(engine.info.cacheDir).find((l) => l.file.modelIdentity === engine.info.identity);
    if (!found) {
      throw new LogitscopeError('argument_invalid', 'no tuned lens has been fitted for this model yet: run a sweep with the tuned_lens technique first (it fits one on the sweep\'s train slice)', 'techniques');
    }
    return { ...t, lens: lensRecordOf(found.file) };
  });
}
