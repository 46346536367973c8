/**
 * Where a residual vector is read, named as TransformerLens names its hook points, so exports, the
 * inspector and the database speak the vocabulary researchers already use. Pure: every front and
 * the renderer import it.
 */

/** Layer -1 is the embeddings (the input of block 0); layer l ≥ 0 is the output of block l. */
export type ResidHook = 'hook_embed' | `blocks.${number}.hook_resid_post`;

export function residHook(layer: number): ResidHook {
  if (!Number.isInteger(layer) || layer < -1) throw new RangeError(`no residual hook for layer ${layer}`);
  return layer === -1 ? 'hook_embed' : `blocks.${layer}.hook_resid_post`;
}
