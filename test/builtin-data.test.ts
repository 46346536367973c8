import { describe, expect, it } from 'vitest';
import {
  brownText,
  builtinDocuments,
  chunkDocument,
  fnv1a,
  isHeldOut,
  readBuiltin,
  type BuiltinDatasetName,
} from '../src-main/data/builtin.ts';
import { readerFor } from '../src-main/data/formats.ts';
import { LogitscopeError } from '../src-main/errors.ts';
import { collectSlice, readSlice } from '../src-main/data/slice.ts';

async function texts(name: BuiltinDatasetName): Promise<Array<{ text: string; source?: string }>> {
  const out: Array<{ text: string; source?: string }> = [];
  for await (const r of readBuiltin(`builtin:${name}`, { from: 0 })) {
    if ('text' in r) out.push({ text: r.text, source: r.source });
  }
  return out;
}

describe('built-in demo dataset', () => {
  it('yields Pile-like records: paragraph-sized text with a corpus source name', async () => {
    const { records } = await collectSlice({ files: ['builtin:demo'], limit: 500 });
    expect(records).toHaveLength(500);
    for (const r of records) {
      expect(r.file).toBe('builtin:demo');
      expect(r.source).toMatch(/^(Brown \([a-z ]+\)|SOTU \d{4} [A-Z][\w. ]+)$/);
      expect(r.text.split(/\s+/).length).toBeLessThan(400);
      expect(r.text).not.toMatch(/\/[a-z]+(-tl)?\b.*\/[a-z]+/); // Brown's POS tags are stripped
    }
    const sources = new Set(records.map((r) => r.source!.split(' ')[0]));
    expect(sources).toEqual(new Set(['Brown', 'SOTU'])); // the fixed shuffle mixes the corpora from the start
  });

  it('reads the same records in the same order every time', async () => {
    const a = await collectSlice({ files: ['builtin:demo-heldout'], start: 100, end: 160 });
    const b = await collectSlice({ files: ['builtin:demo-heldout'], start: 100, end: 160 });
    expect(a.records).toEqual(b.records);
    expect(a.records[0].index).toBe(100);
  });

  it('splits by document: train and held-out are disjoint and together are the whole corpus', async () => {
    const ids = (name: BuiltinDatasetName) => builtinDocuments(name).map((d) => d.id);
    const train = new Set(ids('demo-train'));
    const held = ids('demo-heldout');
    expect(held.filter((id) => train.has(id))).toEqual([]);
    expect([...train, ...held].sort()).toEqual(ids('demo').sort());
    expect(held.every(isHeldOut)).toBe(true);
    // About one document in ten, from both corpora.
    expect(held.length / ids('demo').length).toBeGreaterThan(0.07);
    expect(held.length / ids('demo').length).toBeLessThan(0.13);
    expect(held.some((id) => id.startsWith('brown/')) && held.some((id) => id.startsWith('sotu/'))).toBe(true);

    const [all, trainRecords, heldRecords] = await Promise.all([texts('demo'), texts('demo-train'), texts('demo-heldout')]);
    const key = (r: { text: string; source?: string }) => `${r.source}\0${r.text}`;
    expect([...trainRecords, ...heldRecords].map(key).sort()).toEqual(all.map(key).sort());
  });

  it('pins the split rule to FNV-1a of the document id, so it cannot drift silently', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(builtinDocuments('demo-heldout').length).toBe(74);
    expect(builtinDocuments('demo').length).toBe(733); // 500 Brown samples + 233 addresses
  });

  it('works through the dataset layer with a pseudo-path, stopping early at a limit', async () => {
    expect(readerFor('builtin:demo-heldout')).toBe(readBuiltin);
    const gen = readSlice({ files: ['builtin:demo-heldout'], filter: { maxWords: 200, maxChars: 1600 }, limit: 5 });
    const got = [];
    for await (const r of gen) got.push(r);
    expect(got).toHaveLength(5);
  });

  it('reports an unknown built-in name with the known ones', async () => {
    const err = await collectSlice({ files: ['builtin:nope'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LogitscopeError);
    expect((err as LogitscopeError).code).toBe('dataset_missing');
    expect((err as LogitscopeError).message).toContain('builtin:demo-heldout');
  });

  it('rebuilds plain text from Brown POS-tagged tokens', () => {
    const tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, 1/2/cd (/( it/pps )/) ./.\n";
    expect(brownText(tagged)).toBe('The jury said "no evidence", 1/2 (it).');
  });

  it('packs sentences into chunks of 60–150 words', () => {
    const sentence = (i: number) => `Sentence ${i} has exactly eight words in it.`;
    const chunks = chunkDocument(Array.from({ length: 40 }, (_, i) => sentence(i)).join(' '));
    expect(chunks.map((c) => c.split(' ').length)).toEqual([64, 64, 64, 64, 64]);
    expect(chunks.join(' ')).toContain('Sentence 39 has');
  });
});
