/**
 * "By source" in headless Chromium against `serve` and a real Lab (tiny checkpoint, one finished
 * sweep over records from three sources, some naming none): a line and a legend entry per source,
 * each with its n, for the technique picked. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SHOTS, SKIP_REASON, type AppSession } from './harness.ts';


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-by-source-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');
/** 6 Wiki, 4 Code, 2 without a source: the order by n is fixed. */
const SOURCES = ['Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Wiki', undefined, undefined];

describe.skipIf(!HAS_CHROMIUM)(`the Charts tab splits a run by data source, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 9 });
    const lines = SOURCES.map((s, i) => JSON.stringify({ text: `Record ${i} is about ${['a harbour', 'the hills', 'a library'][i % 3]} and more.`, ...(s && { meta: { pile_set_name: s } }) }));
    fs.writeFileSync(data, lines.join('\n'));
    app = await openApp({
      tmp,
      acceptDownloads: true,
      prepare: async (l) => {
        await l.call('model.load', { dir: model });
        const { runId } = await l.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3, name: 'source sweep' });
        await l.settled(runId);
      },
    });
    page = app.page;
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open source sweep' }).click();
  }, 180_000);

  afterAll(async () => app?.close());

  test('opening "By source" draws one line per source, with n in the legend, for the technique picked', async () => {
    await page.locator('summary', { hasText: 'By source' }).click();
    const precision = page.getByRole('figure', { name: /precision@1 per layer by source: logit lens/i });
    await expect.poll(() => precision.getByRole('list', { name: /Legend/ }).getByRole('button').allInnerTexts()).toEqual(['Wiki (n=6)', 'Code (n=4)', '(none) (n=2)']);
    await expect.poll(async () => JSON.parse((await precision.getAttribute('data-points')) ?? '{}')).toEqual({ source_0: 3, source_1: 3, source_2: 3 });
    const surprisal = page.getByRole('figure', { name: /per layer by source: logit lens/i }).nth(1);
    expect(await surprisal.getByRole('list', { name: /Legend/ }).getByRole('button').count()).toBe(3);
    await page.locator('details.by-source').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'by-source.png'), fullPage: true });

    // The split is a figure like the main charts: its SVG names the technique, each source with its n, and the run.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save precision by source chart as SVG' }).click()]);
    const svg = fs.readFileSync((await download.path())!, 'utf8');
    expect(download.suggestedFilename()).toBe('source sweep · logit lens-precision by source.svg');
    for (const text of ['precision@1 per layer by source: logit lens', 'Wiki (n=6)', 'Code (n=4)', '(none) (n=2)', 'source sweep · logit lens · n = 12 examples']) expect(svg).toContain(text);

    await page.getByRole('combobox', { name: 'Technique' }).selectOption({ label: 'logitscope' });
    await expect.poll(() => page.getByRole('figure', { name: /precision@1 per layer by source: logitscope/i }).count()).toBe(1);
    expect(app.problems).toEqual([]);
  });
});
