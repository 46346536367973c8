/**
 * The affine tuned lens in the app, in headless Chromium against `serve` and a real Lab (tiny
 * checkpoint): the Sweep panel's picker offers it, a run with it draws four curves on both charts,
 * the inspector has a column for it, and the run names the lens it read through.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-tuned-lens-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');
const LAYERS = 3;
const LENS_LABEL = 'affine tuned lens (fitted on a train slice, then cached)';

describe.skipIf(!HAS_CHROMIUM)(`the tuned lens in the app, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 13, config: { n_layer: LAYERS } });
    const topics = ['a harbour', 'the hills', 'a library', 'the old mill', 'a river', 'the market'];
    fs.writeFileSync(data, Array.from({ length: 60 }, (_, i) => JSON.stringify({ text: `Record ${i} tells of ${topics[i % topics.length]} and the people there.` })).join('\n'));
    app = await openApp({ tmp, prepare: async (l) => void (await l.call('model.load', { dir: model })) });
    page = app.page;
  }, 180_000);

  afterAll(async () => app?.close());

  test('the picker offers the tuned lens, and a sweep with it charts four curves, one point per layer each', async () => {
    const lens = page.getByLabel(LENS_LABEL, { exact: true });
    expect(await lens.isChecked()).toBe(false); // off by default: its first use fits a lens
    await page.getByLabel('Dataset files, one path per line').fill(data);
    await page.getByText('Slice and filter').click();
    // Evaluate on the first 5 of records 0..9; the lens trains on the records after the pool (10..59).
    await page.getByLabel('Pool end', { exact: true }).fill('10');
    await page.getByLabel('Limit', { exact: true }).fill('5');
    await lens.check();
    await page.getByLabel('Run name (optional)').fill('lens sweep');
    await page.getByRole('button', { name: 'Run sweep' }).click();

    await page.waitForFunction(
      (l) => {
        const figures = [...document.querySelectorAll('.main-charts figure.chart')];
        return (
          figures.length === 3 && // precision@1, surprisal and the per-row measure
          figures.every((f) => {
            const counts = Object.values(JSON.parse((f as HTMLElement).dataset.points ?? '{}')) as number[];
            return counts.length === 4 && counts.every((n) => n === l);
          })
        );
      },
      LAYERS,
      { timeout: 120_000 },
    );
    const drawn = await page.$$eval('.main-charts figure.chart', (figures) => figures.map((f) => JSON.parse((f as HTMLElement).dataset.points ?? '{}') as Record<string, number>));
    expect(drawn).toEqual([0, 1, 2].map(() => ({ logit_lens: LAYERS, patchscope: LAYERS, logitscope: LAYERS, tuned_lens: LAYERS })));
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('completed');
    // The legend names it as PROTOCOL.md does.
    expect(await page.locator('.main-charts').first().innerText()).toContain('affine tuned lens');
    await app.shot('tuned-lens-charts');

    // The inspector has a column for it; at the last layer it reads the model's own row, so it hits the reference.
    await page.getByText('Table: precision@1 per layer').click();
    await page.getByRole('button', { name: `Inspect affine tuned lens at layer ${LAYERS - 1}` }).click();
    const grid = page.getByRole('table', { name: /Top-k next tokens/ });
    await expect.poll(() => grid.locator('tbody tr').count()).toBe(LAYERS);
    expect(await grid.locator('thead th').count()).toBe(1 + 4);
    expect(await page.locator(`#cell-tuned_lens-${LAYERS - 1}`).getAttribute('class')).toMatch(/hit/);
    await app.shot('tuned-lens-inspector');

    // The run names the lens it used (train slice, seed, ridge, key).
    const [run] = await app.lab.call('runs.list', {});
    const view = await app.lab.call('runs.get', { runId: run.id });
    expect(view.techniquePrompts.tuned_lens.lens).toMatch(/^affine tuned lens [0-9a-f]{12}: fitted on items 0\.\.9999 of records 10\.\./);
    expect(app.problems).toEqual([]);
  }, 240_000);

  test('the Extract view reads one prompt through the lens the sweep fitted', async () => {
    await page.getByRole('tab', { name: 'Extract' }).click();
    await page.getByLabel('Prompt', { exact: true }).fill('Record 3 tells of the old mill and the people');
    await page.getByLabel('affine tuned lens (the lens a sweep last fitted for this model)', { exact: true }).check();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    const grid = page.getByRole('table', { name: /Top-k next tokens/ });
    await expect.poll(() => grid.locator('thead th').count()).toBe(1 + 4);
    expect(await grid.locator('thead').innerText()).toContain('affine tuned lens');
    expect(await grid.locator('tbody tr').count()).toBe(LAYERS);
    // The last layer's map is the identity: the lens's top-1 there is the model's own.
    expect(await page.locator(`#extract-cell-tuned_lens-${LAYERS - 1}`).getAttribute('class')).toMatch(/hit/);
    await app.shot('tuned-lens-extract');
    expect(app.problems).toEqual([]);
  }, 120_000);
});
