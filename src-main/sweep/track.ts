import { LogitscopeError } from '../errors.ts';
import type { SweepExample } from '../protocol/spec.ts';

/** How many bad records an error lists before it says "and N more". */
const LISTED = 5;

/**
 * With `track: 'record'`: each example's record names one token to follow (its `track` field, as
 * text or as an id), resolved here to the id every row of the example then reads exactly. Every
 * example must have one, and text must be exactly one token of this model's tokenizer (a leading
 * space is part of a GPT-2-style token: " Paris", not "Paris"). All of it is checked before any
 * compute, and every bad record is reported at once.
 */
export function resolveTrackTokens(
  examples: readonly SweepExample[],
  model: { encode(text: string): number[]; decode(ids: number[]): string; dVocab: number },
): SweepExample[] {
  const problems: string[] = [];
  const resolved = examples.map((e) => {
    const given = e.trackGiven;
    const where = `record ${e.recordIndex}`;
    if (given === undefined) {
      problems.push(`${where} has no "track" field`);
      return e;
    }
    if (typeof given === 'number') {
      if (Number.isInteger(given) && given >= 0 && given < model.dVocab) return { ...e, track: given };
      problems.push(`${where}: track id ${given} is not a token id of this model (0..${model.dVocab - 1})`);
      return e;
    }
    const ids = model.encode(given);
    if (ids.length === 1) return { ...e, track: ids[0] };
    const pieces = ids.map((id) => JSON.stringify(model.decode([id]))).join(' + ');
    problems.push(`${where}: track ${JSON.stringify(given)} is ${ids.length === 0 ? 'no token at all' : `${ids.length} tokens (${pieces})`}, not one`);
    return e;
  });
  if (problems.length > 0) {
    const more = problems.length > LISTED ? `; and ${problems.length - LISTED} more` : '';
    throw new LogitscopeError(
      'track_token_invalid',
      `${problems.length} of the ${examples.length} examples' records name no token to follow: ` +
        `${problems.slice(0, LISTED).join('; ')}${more}. Following each record's own token needs a "track" field (jsonl) or column (parquet) ` +
        `in every record, holding one token of this model: its text, with any leading space, or its id (txt files have no fields)`,
      'track',
    );
  }
  return resolved;
}
