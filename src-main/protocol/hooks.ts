/**
 * Where a residual vector is read, named as TransformerLens names its hook points, so exports, the
 * inspector and the database speak the vocabulary researchers already use. Pure: every front and
 * the renderer import it.
 *
 * Layer -1 is the embeddings (the input of block 0); layer l ≥ 0 is the output of block l. The
 * engine stacks the residuals as [nLayers + 1, …] with the embeddings first, so the stack's index
 * is layer + 1: residIndex says so once, and no caller writes that shift by hand.
 */

declare const hook: unique symbol;

/** A residual hook's name, made only by residHook, so a hand-written string cannot pass for one. */
export type Hook = ('hook_embed' | `blocks.${number}.hook_resid_post`) & { readonly [hook]: true };

export function residHook(layer: number): Hook {
  if (!Number.isInteger(layer) || layer < -1) throw new RangeError(`no residual hook for layer ${layer}`);
  return (layer === -1 ? 'hook_embed' : `blocks.${layer}.hook_resid_post`) as Hook;
}

/** The hook's layer: -1 for hook_embed, l for blocks.l.hook_resid_post. */
export function hookLayer(h: Hook): number {
  return h === 'hook_embed' ? -1 : Number(h.slice('blocks.'.length, h.indexOf('.', 'blocks.'.length)));
}

/** The hook's index on the engine's stacked residual axis [nLayers + 1]: 0 for hook_embed, l + 1 for block l. */
export function residIndex(h: Hook): number {
  return hookLayer(h) + 1;
}
