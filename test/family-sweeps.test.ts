/**
 * Sweeps and extractions through the Lab (real engine, real SQLite file) on the tiny checkpoint of
 * every family: each stored row of the logit lens, token identity, the logitscope and a custom
 * patchscope, read back from the run's export, equals the independent float64 reference within
 * 1e-4 nats (test/fixtures/family-rows.ts), with the family's BOS and target prompts; and so does
 * every row of an extraction at every position of a prompt (the logit-lens picture's request).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EventName } from '../src-main/api/contract.ts';
import { Lab } from '../src-main/api/lab.ts';
import { loadTokenizer } from '../src-main/engine/tokenizer.ts';
import { TOKEN_IDENTITY_PROMPT } from '../src-main/protocol/techniques.ts';
import { expectRowsMatchReference, type ReferenceTechnique } from './fixtures/family-rows.ts';
import { FAMILIES, writeTinyFamily, type Family, type TinyFamily } from './fixtures/hf-families.ts';
import { writeTopicRecords } from './fixtures/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'family-sweeps-'));
const data = path.join(tmp, 'lines.jsonl');
const CUSTOM = 'the cat ->';
const TECHNIQUES = [{ id: 'logit_lens' as const }, { id: 'patchscope' as const }, { id: 'logitscope' as const }, { id: 'custom' as const, prompt: CUSTOM }];

/** The largest deviations seen per family; LOGITSCOPE_PRINT_NUMERICS=1 prints them at the end, for the record. */
const measured: Record<string, number> = {};

let lab: Lab;
const events: { name: EventName; payload: any }[] = [];
const waitFor = (pred: () => boolean) => expect.poll(pred, { timeout: 120_000, interval: 50 }).toBe(true);

beforeAll(async () => {
  writeTopicRecords(data, 12);
  lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
  lab.onEvent((name, payload) => events.push({ name, payload }));
});
afterAll(async () => {
  if (process.env.LOGITSCOPE_PRINT_NUMERICS) console.log(JSON.stringify(measured, null, 1));
  await lab?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** What each technique reads, with its target prompt as the family's tokenizer and BOS make it (PROTOCOL.md, Families). */
function referenceTechniques(ckpt: TinyFamily, bos: boolean): Record<string, ReferenceTechnique> {
  const tok = loadTokenizer(ckpt.dir);
  // Qwen2's configs may leave bos_token_id out (null): its <|endoftext|>, the eos id, stands in.
  const configBos = (ckpt.config.bos_token_id ?? ckpt.config.eos_token_id) as number;
  const first = tok.bos ? [tok.bos.id] : bos ? [configBos] : [];
  const patchscope = (text: number[]): ReferenceTechnique => ({ kind: 'patchscope', promptTokens: [...first, ...text], targetLayer: 'same' });
  return {
    logit_lens: { kind: 'logit_lens' },
    patchscope: patchscope(tok.encode(TOKEN_IDENTITY_PROMPT)),
    logitscope: patchscope([tok.tokenFor('?')!]),
    custom_1: patchscope(tok.encode(CUSTOM)),
  };
}

/** The record's target prompts are the ones the reference uses, so a wrong prompt fails here and not as a number. */
function expectPrompts(record: { techniques: Record<string, { prompt_tokens?: number[] }> }, techniques: Record<string, ReferenceTechnique>): void {
  for (const [id, t] of Object.entries(techniques)) {
    if (t.kind === 'patchscope') expect(record.techniques[id].prompt_tokens, id).toEqual(t.promptTokens);
  }
}

describe.each(FAMILIES)('%s', (family: Family) => {
  let ckpt: TinyFamily;
  let layers: number[];

  beforeAll(async () => {
    ckpt = writeTinyFamily({ dir: path.join(tmp, family), family, seed: 5 });
    const view = await lab.call('model.load', { dir: ckpt.dir });
    layers = Array.from({ length: view.config.nLayers + 1 }, (_, i) => i - 1);
  }, 120_000);

  // The seed's preset asks for BOS (prepended where the tokenizer adds none, and drawable); the
  // paper's asks for none (only the tokenizer's own, never the sampled position).
  test.each([['logitscope', true], ['patchscopes', false]] as const)('every row of a sweep (%s preset, BOS %s; embeddings and every layer) equals the float64 reference within 1e-4 nats, and parity passes', async (preset, bos) => {
    const requestId = `sweep-${family}-${preset}`;
    const overrides = { poolEnd: 12, evalStart: 0, limit: 4, positionSeed: 9 };
    const { runId } = await lab.call('sweep.start', { files: [data], preset, overrides, techniques: TECHNIQUES, layers, k: 5, requestId });
    await waitFor(() => events.some((e) => e.name === 'sweep.finished' && e.payload.runId === runId));
    const record = JSON.parse((await lab.call('runs.export', { runId, format: 'json' })).content!);
    const techniques = referenceTechniques(ckpt, bos);
    expectPrompts(record, techniques);
    expect(record.examples).toHaveLength(4);
    const tok = loadTokenizer(ckpt.dir);
    for (const e of record.examples) {
      if (tok.bos || bos) expect(e.tokens[0]).toBe((techniques.custom_1 as { promptTokens: number[] }).promptTokens[0]);
      if (tok.bos && !bos) expect(e.position).toBeGreaterThan(0);
    }
    const check = expectRowsMatchReference(ckpt, record.examples, techniques);
    expect(check.rows).toBe(4 * layers.length * 4);
    measured[`${family} ${preset} sweep`] = check.maxDeviation;
    expect(check.nearTies).toBeLessThanOrEqual(2);
    expect(record.parity.status).toBe('pass');
    expect(record.parity.techniques.map((t: { technique: string; pass: boolean }) => [t.technique, t.pass])).toEqual(Object.keys(techniques).map((id) => [id, true]));
  }, 300_000);

  test('every row of an extraction at every position of a prompt (BOS off) equals the float64 reference within 1e-4 nats', async () => {
    const view = await lab.call('extract', { text: 'the cat sat on the mat', positions: 'all', techniques: TECHNIQUES, layers, k: 5 });
    const record = view.record as { techniques: Record<string, { prompt_tokens?: number[] }>; examples: any[] };
    const techniques = referenceTechniques(ckpt, false);
    expectPrompts(record, techniques);
    expect(record.examples.map((e) => e.position)).toEqual(view.tokens.map((_, i) => i));
    expect(view.columns!.map((c) => c.reference.id)).toEqual(record.examples.map((e) => e.reference_top1));
    const check = expectRowsMatchReference(ckpt, record.examples, techniques);
    expect(check.rows).toBe(view.tokens.length * layers.length * 4);
    measured[`${family} extract`] = check.maxDeviation;
    expect(view.parity.status).toBe('pass');
  }, 300_000);
});
