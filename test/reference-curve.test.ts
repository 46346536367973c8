import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseReferenceCurve } from '../src-main/data/reference-curve.ts';
import { LogitscopeError } from '../src-main/errors.ts';

const SEED = path.join(import.meta.dirname, '..', 'docs', 'reference', 'seed-gptj-per-layer.json');

function refusal(text: string, name: string): LogitscopeError {
  try {
    parseReferenceCurve(text, name);
  } catch (e) {
    if (e instanceof LogitscopeError) return e;
    throw e;
  }
  throw new Error('the table was accepted');
}

describe('reference curves', () => {
  test("the shipped seed table reads as 4 techniques × 2 metrics × 28 layers, with the seed's published first and last numbers", () => {
    const curve = parseReferenceCurve(fs.readFileSync(SEED, 'utf8'), 'seed-gptj-per-layer.json');
    expect(curve.model).toBe('EleutherAI/gpt-j-6b');
    expect(curve.rows).toHaveLength(4 * 2 * 28);
    const at = (technique: string, metric: string, layer: number) => curve.rows.find((r) => r.technique === technique && r.metric === metric && r.layer === layer);
    // The seed's published logit-lens numbers at layers 0 and 27 (its README table).
    expect(at('logit_lens', 'precision_at_1', 0)).toMatchObject({ value: 0.033, n: 698 });
    expect(at('logit_lens', 'precision_at_1', 27)?.value).toBe(1);
    expect(at('logit_lens', 'surprisal', 0)?.value).toBe(8.727);
    expect(new Set(curve.rows.map((r) => r.technique))).toEqual(new Set(['logit_lens', 'patchscope', 'logitscope', 'patchscope_semicolon_prompt']));
  });

  test('a CSV table with quoted names and optional interval columns reads, its source named by the file', () => {
    const curve = parseReferenceCurve('layer,technique,metric,value,n,low,high\r\n0,"logit_lens",precision_at_1,0.5,10,0.2,0.8\n1,"my ""lens"", v2",kl,1.25,,,\n', 'paper-fig3.csv');
    expect(curve.source).toBe('paper-fig3');
    expect(curve.rows).toEqual([
      { technique: 'logit_lens', layer: 0, metric: 'precision_at_1', value: 0.5, n: 10, low: 0.2, high: 0.8 },
      { technique: 'my "lens", v2', layer: 1, metric: 'kl', value: 1.25 },
    ]);
  });

  test('every bad row is reported at once, by line, before anything is drawn', () => {
    const e = refusal('layer,technique,metric,value\n0,logit_lens,precision,0.5\n-2,logit_lens,kl,1\n3,logit_lens,kl,abc\n', 'bad.csv');
    expect(e.code).toBe('reference_parse');
    expect(e.path).toBe('bad.csv');
    expect(e.issues?.map((i) => i.path)).toEqual(['line 2.metric', 'line 3.layer', 'line 4.value']);
  });

  test('a JSON table without a source, with a duplicate row or an interval that excludes its value is refused', () => {
    const rows = [
      { technique: 't', layer: 0, metric: 'kl', value: 1, low: 2 },
      { technique: 't', layer: 1, metric: 'kl', value: 1 },
      { technique: 't', layer: 1, metric: 'kl', value: 2 },
    ];
    const e = refusal(JSON.stringify({ rows }), 'x.json');
    expect(e.issues?.map((i) => i.path)).toEqual(['source', 'rows[0].low', 'rows[2]']);
  });

  test('a CSV without the required header, text that is not JSON, and an empty table each say what a reference is', () => {
    expect(refusal('layer,value\n0,1\n', 'a.csv').message).toMatch(/missing technique, metric/);
    expect(refusal('{oops', 'a.json').message).toMatch(/not JSON/);
    expect(refusal(JSON.stringify({ source: 's', rows: [] }), 'a.json').message).toMatch(/no rows/);
  });
});
