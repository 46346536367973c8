/** One prompt, one position, every layer × technique: the `extract` request, for every front. */
import type { Engine } from '../engine/engine.ts';
import { LogitscopeError } from '../errors.ts';
import { CONVENTIONS, describeModel, describeTechniques, type ExportRecord } from '../sweep/export-record.ts';
import { Extractor } from '../sweep/extract.ts';
import { BUILT_IN_TECHNIQUES, customPatchscope, resolveTechniques, type TechniqueSpec } from '../sweep/techniques.ts';
import type { ExtractView, Payload, TechniqueChoice } from './contract.ts';
import { cellsOf, techniqueView } from './views.ts';

/** The sweep's technique specs from the API's choices; custom prompts are numbered in order. */
export function techniqueSpecs(choices: readonly TechniqueChoice[]): TechniqueSpec[] {
  let custom = 0;
  return choices.map((c) => (c.id === 'custom' ? customPatchscope(c.prompt, custom++, c.targetLayer ?? { kind: 'same' }) : BUILT_IN_TECHNIQUES.find((t) => t.id === c.id)!));
}

/** Layers and fixed target layers must exist in the loaded model: checked before any work. */
export function checkLayers(engine: Engine, layers: readonly number[] | null | undefined, choices: readonly TechniqueChoice[]): void {
  const last = engine.config.nLayers - 1;
  const bad = (layers ?? []).filter((l) => l > last);
  if (bad.length > 0) throw new LogitscopeError('layer_out_of_range', `layer${bad.length > 1 ? 's' : ''} ${bad.join(', ')} past the last (${last}) of this model`, 'layers');
  choices.forEach((c, i) => {
    if (c.id === 'custom' && c.targetLayer?.kind === 'fixed' && c.targetLayer.layer > last) {
      throw new LogitscopeError('layer_out_of_range', `target layer ${c.targetLayer.layer} is past the last (${last}) of this model`, `techniques.${i}.targetLayer.layer`);
    }
  });
}

export async function extractOne(engine: Engine, p: Payload<'extract'>): Promise<ExtractView> {
  const bos = p.bos ?? false;
  const choices = p.techniques ?? BUILT_IN_TECHNIQUES.map((t) => ({ id: t.id as 'logit_lens' | 'patchscope' | 'logitscope' }));
  checkLayers(engine, p.layers, choices);
  const tokens = engine.tokenize(p.text, { bos });
  const position = p.position ?? tokens.length - 1;
  if (position >= tokens.length) {
    throw new LogitscopeError('position_out_of_range', `position ${position} is outside the prompt (${tokens.length} tokens: 0..${tokens.length - 1})`, 'position');
  }
  const techniques = resolveTechniques(techniqueSpecs(choices), (t) => engine.tokenize(t, { bos }));
  const layers = p.layers ?? Array.from({ length: engine.config.nLayers }, (_, l) => l);
  const k = p.k ?? 5;
  const [example] = await new Extractor(engine).extract({ examples: [{ tokens, position }], techniques, layers, k });
  const text = (id: number) => engine.tokenizer.tokenString(id);
  const record: ExportRecord = {
    model: describeModel(engine.info),
    techniques: describeTechniques(techniques),
    conventions: CONVENTIONS,
    bos,
    examples: [example],
  };
  return {
    tokens: tokens.map((id) => ({ id, text: text(id) })),
    position,
    bos,
    reference: { id: example.reference_top1, text: text(example.reference_top1) },
    techniques: techniques.map((t) => {
      const v = techniqueView(t);
      return { id: t.id, ...(v.prompt !== undefined && { prompt: v.prompt }), ...(v.targetLayer !== undefined && { targetLayer: v.targetLayer }) };
    }),
    layers,
    cells: cellsOf(example.layers, example.reference_top1, text),
    record,
  };
}
