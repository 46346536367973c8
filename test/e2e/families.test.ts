/**
 * Other model families in the app, in headless Chromium against `serve` and a real Lab: a tiny
 * Llama (SentencePiece tokenizer, BOS always) and a tiny GPT-NeoX (byte-level, no BOS, a head
 * padded past its tokenizer), each loaded through the model panel, swept, extracted at a clicked
 * position (the layer × technique grid), and read at every position in the Extract tab's logit-lens picture.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtractView } from '../../src-main/api/contract.ts';
import { loadTokenizer } from '../../src-main/engine/tokenizer.ts';
import { writeTinyFamily } from '../fixtures/hf-families.ts';
import { writeTopicRecords } from '../fixtures/records.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const LAYERS = 3;
const TECHNIQUES = ['logit_lens', 'patchscope', 'logitscope'];
const PADDING_ROWS = 14;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-families-'));
const data = path.join(tmp, 'lines.jsonl');
const models = { llama: path.join(tmp, 'tiny-llama'), gpt_neox: path.join(tmp, 'tiny-neox') };

describe.skipIf(!HAS_CHROMIUM)(`Llama and GPT-NeoX checkpoints in the app${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  const alertText = () => page.getByRole('alert').filter({ hasText: /\S/ }).allInnerTexts();
  const fact = (term: string) => page.getByLabel('Loaded model').locator(`dt:text-is("${term}") + dd`).innerText();

  beforeAll(async () => {
    writeTopicRecords(data, 12);
    writeTinyFamily({ dir: models.llama, family: 'llama', seed: 4 });
    const neoxVocab = writeTinyFamily({ dir: path.join(tmp, 'neox-probe'), family: 'gpt_neox', seed: 1 }).config.vocab_size as number;
    writeTinyFamily({ dir: models.gpt_neox, family: 'gpt_neox', seed: 4, overrides: { vocab_size: neoxVocab + PADDING_ROWS } });
    app = await openApp({ tmp });
    ({ page } = app);
  });

  afterAll(async () => {
    await app?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe.each(['llama', 'gpt_neox'] as const)('%s', (family) => {
    const tok = () => loadTokenizer(models[family]);

    test('loads through the model panel, which shows the family, the parameters, the memory plan and the tokenizer', async () => {
      await page.getByRole('tab', { name: 'Charts' }).click();
      await page.getByLabel('Checkpoint directory').fill(models[family]);
      await page.getByRole('button', { name: 'Load model' }).click();
      await expect.poll(() => fact('Family').catch(() => ''), { timeout: 90_000 }).toBe(family);
      expect(await fact('Parameters')).toMatch(/^\d+(\.\d+)?K$/);
      expect(await fact('Device memory')).toMatch(/^float32: .* weights \+ at most 2\.0 GiB working set = /);
      expect(await fact('Tokenizer')).toBe(family === 'llama' ? 'sentencepiece, BOS <s> always' : 'byte-level, no BOS of its own');
      if (family === 'gpt_neox') expect(await fact('Vocab · context')).toContain(`(${PADDING_ROWS} padding rows)`);
      expect(await alertText()).toEqual([]);
      await app.shot(`families-${family}-loaded`);
    }, 120_000);

    test('a sweep of the three built-in techniques fills the three charts (precision, surprisal, the per-row measure) to one point per layer', async () => {
      await page.getByLabel('Dataset files, one path per line').fill(data);
      // Opened once, for the first family; it stays open.
      const slice = page.locator('details', { has: page.getByText('Slice and filter') });
      if ((await slice.getAttribute('open')) === null) await page.getByText('Slice and filter').click();
      await page.getByLabel('Limit', { exact: true }).fill('3');
      for (const name of ['logit lens', 'token-identity patchscope', 'logitscope']) await page.getByLabel(name, { exact: true }).check();
      await page.getByLabel('Run name (optional)').fill(`${family} sweep`);
      await page.getByRole('button', { name: 'Run sweep' }).click();
      await page.waitForFunction(
        ([techniques, layers]) => {
          const charts = [...document.querySelectorAll('.main-charts figure.chart')];
          return charts.length === 3 && charts.every((f) => {
            const counts = JSON.parse((f as HTMLElement).dataset.points ?? '{}') as Record<string, number>;
            return (techniques as string[]).every((t) => counts[t] === layers);
          });
        },
        [TECHNIQUES, LAYERS] as const,
        { timeout: 120_000 },
      );
      await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('completed');
      expect(await alertText()).toEqual([]);
      await app.shot(`families-${family}-sweep`);
    }, 180_000);

    test('an extraction at a clicked position shows the layer × technique grid, the model’s own token at the last layer', async () => {
      await page.getByRole('tab', { name: 'Extract' }).click();
      // The previous family's picture left the view reading every position.
      await page.getByLabel('the chosen position (every layer × technique, top-k)').check();
      await page.getByLabel('Prompt', { exact: true }).fill('the cat sat on the mat');
      const options = page.getByRole('listbox', { name: 'Prompt tokens: the position to read' }).getByRole('option');
      await expect.poll(() => options.count()).toBeGreaterThan(3);
      await options.nth(2).click();
      const reply = page.waitForResponse((r) => r.url().endsWith('/api/extract')).then(async (r) => (await r.json()).result as ExtractView);
      await page.getByRole('button', { name: 'Run extraction' }).click();
      const view = await reply;
      expect(view.position).toBe(2);
      // Position 2 counts Llama's BOS, so it is the text's second token there and its third in NeoX.
      const ids = tok().encode('the cat sat on the mat');
      expect(view.tokens[2].id).toBe(ids[family === 'llama' ? 1 : 2]);
      const grid = page.getByRole('table', { name: /Top-k next tokens/ });
      await expect.poll(() => grid.locator('tbody tr').count(), { timeout: 60_000 }).toBe(LAYERS);
      expect(await grid.locator('thead th').count()).toBe(1 + TECHNIQUES.length);
      // At the last layer the logit lens reads the model's own output: a hit, with the reply's surprisal.
      const last = page.locator(`#extract-cell-logit_lens-${LAYERS - 1}`);
      expect(await last.getAttribute('class')).toMatch(/hit/);
      const cell = view.cells.find((c) => c.technique === 'logit_lens' && c.layer === LAYERS - 1)!;
      expect(cell.top1).toBe(view.reference.id);
      expect(await last.innerText()).toContain(`s ${cell.surprisal.toFixed(2)} nats`);
      expect(view.parity.status).toBe('pass');
      expect(await alertText()).toEqual([]);
      await app.shot(`families-${family}-extract-grid`);
    }, 180_000);

    test('the logit-lens picture reads every position, its columns headed by the tokenizer’s own token text', async () => {
      await page.getByRole('tab', { name: 'Extract' }).click();
      await page.getByLabel('Prompt', { exact: true }).fill('the cat sat on the mat');
      const options = page.getByRole('listbox', { name: 'Prompt tokens: the position to read' }).getByRole('option');
      await expect.poll(() => options.count()).toBeGreaterThan(3);
      await page.getByLabel('every position (the logit-lens picture)').check();
      const reply = page.waitForResponse((r) => r.url().endsWith('/api/extract')).then(async (r) => (await r.json()).result as ExtractView);
      await page.getByRole('button', { name: 'Run extraction' }).click();
      const view = await reply;
      const t = tok();
      const ids = t.encode('the cat sat on the mat');
      // The tokenizer's own tokens and text; the prompt starts with Llama's BOS, NeoX's with none.
      expect(view.tokens.map((x) => x.id)).toEqual(family === 'llama' ? [t.bos!.id, ...ids] : ids);
      expect(view.tokens.map((x) => x.text)).toEqual(t.tokenStrings(view.tokens.map((x) => x.id)));
      expect(view.paddingFrom).toBe(t.vocabSize);
      await expect.poll(() => page.locator('table.lens').count(), { timeout: 60_000 }).toBe(TECHNIQUES.length);
      const heads = await page.locator('table.lens[data-technique="logit_lens"] thead th code').allInnerTexts();
      expect(heads).toEqual(view.tokens.map((x) => x.text.replace(/^ /, '␣')));
      if (family === 'llama') expect(heads[0]).toBe('<s>');
      expect(await page.locator('table.lens[data-technique="logit_lens"] tbody tr').count()).toBe(LAYERS);
      await app.shot(`families-${family}-lens-picture`);
    }, 180_000);

    test('the BOS control says what the tokenizer does, and a typed token is pinned by its own id (not the BOS)', async () => {
      const t = tok();
      if (family === 'llama') {
        expect(await page.getByText(/comes first, always: this model's tokenizer adds it/).innerText()).toContain('<s>');
        expect(await page.getByRole('checkbox', { name: /prepend BOS/ }).count()).toBe(0);
      } else {
        expect(await page.getByRole('checkbox', { name: 'prepend BOS (<|endoftext|>)' }).count()).toBe(1);
      }
      // "the" is one piece in both tiny vocabularies: "▁the" (Llama prepends the space) and "Ġthe".
      const typed = family === 'llama' ? 'the' : ' the';
      const [id] = t.encode(typed);
      await page.getByLabel('Pin a token').fill(typed);
      await page.getByRole('button', { name: 'Pin', exact: true }).click();
      await expect.poll(() => page.locator('.lens-pin').innerText()).toContain(`(id ${id})`);
      await page.getByRole('button', { name: 'Unpin' }).click();
      expect(await alertText()).toEqual([]);
      expect(app.problems).toEqual([]);
    }, 180_000);
  });
});
