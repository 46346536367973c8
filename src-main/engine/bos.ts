/**
 * Where a BOS token goes, for one checkpoint and one protocol setting. PROTOCOL.md "Families" gives the
 * rule and why; in short, the protocol's `bos` adds one where the tokenizer would not, and never
 * removes one the tokenizer always adds (Llama and Gemma are trained with it, and Gemma's outputs
 * without it are meaningless).
 */
import type { PromptTokenizer } from '../protocol/techniques.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface BosPlan {
  /** The id at position 0 of every source and target prompt, or null for none. */
  id: number | null;
  /**
   * Whether a source prompt's sampled position may be the BOS itself. True where the protocol
   * asked for BOS (the seed's `logitscope` preset: "BOS counts"); false where only the tokenizer
   * put it there, so the `patchscopes` preset samples a text token in every family.
   */
  drawn: boolean;
}

/**
 * `asked` is the protocol's (or a request's) `bos`. Where the tokenizer adds its own BOS, that
 * token is used either way; otherwise `asked` prepends the config's bos_token_id (GPT-J and
 * Pythia: `<|endoftext|>`).
 */
export function bosPlan(tokenizer: Pick<Tokenizer, 'bos'>, configBosId: number, asked: boolean): BosPlan {
  if (tokenizer.bos) return { id: tokenizer.bos.id, drawn: asked };
  return asked ? { id: configBosId, drawn: true } : { id: null, drawn: false };
}

/** `ids` with the plan's BOS in front. */
export function withBos(plan: BosPlan, ids: readonly number[]): number[] {
  return plan.id === null ? [...ids] : [plan.id, ...ids];
}

/** Prompts tokenized by `tokenizer` with the plan's BOS in front. */
export function promptTokenizer(tokenizer: Pick<Tokenizer, 'encode' | 'tokenString' | 'tokenFor'>, plan: BosPlan): PromptTokenizer {
  return {
    tokenize: (text) => withBos(plan, tokenizer.encode(text)),
    bosLength: plan.id === null ? 0 : 1,
    tokenString: (id) => tokenizer.tokenString(id),
    oneToken: (text) => {
      const id = tokenizer.tokenFor(text);
      return id === null ? null : withBos(plan, [id]);
    },
  };
}
