/**
 * Sweeping with each record's own track token, as a user does it in headless Chromium against
 * `serve` and a real Lab: the slice preview's count of records with a token, the sweep panel's
 * "Track token" choice, the charts' measure switch offering the tracked token's surprisal and
 * rank, and the inspector showing the stored token's exact numbers in every cell, as runs.example
 * gives them. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const N = 5;
const LAYERS = 3;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-tracked-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'tracked.jsonl');
const untracked = path.join(tmp, 'untracked.jsonl');

describe.skipIf(!HAS_CHROMIUM)(`a sweep that follows each record's track token, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  const percent = (p: number) => `${Number((p * 100).toPrecision(2))}%`;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, config: { n_layer: LAYERS }, format: 'safetensors', seed: 8 });
    const text = (i: number) => `Record ${i} tells of the harbour and the boats.`;
    fs.writeFileSync(data, Array.from({ length: N }, (_, i) => JSON.stringify({ text: text(i), track: i % 2 ? ' boats' : ' the' })).join('\n'));
    fs.writeFileSync(untracked, Array.from({ length: N }, (_, i) => JSON.stringify({ text: text(i) })).join('\n'));
    app = await openApp({ tmp, prepare: async (l) => void (await l.call('model.load', { dir: model })) });
    page = app.page;
  });
  afterAll(async () => app?.close());

  async function startSweep(file: string, name: string): Promise<void> {
    await page.getByRole('tab', { name: 'Charts' }).click();
    await page.getByLabel('Dataset files, one path per line').fill(file);
    await page.getByLabel('Track token').selectOption('record');
    await expect.poll(() => page.getByText('Each record of the data names one token to follow').isVisible()).toBe(true);
    await page.getByLabel('Run name (optional)').fill(name);
    await page.getByRole('button', { name: 'Run sweep' }).click();
  }

  test('the slice preview says how many records carry a track token, and shows each sample\'s', async () => {
    await page.getByLabel('Dataset files, one path per line').fill(data);
    await page.getByRole('button', { name: 'Preview slice' }).click();
    await expect.poll(() => page.locator('.preview-count').innerText()).toContain(`${N} carry a track token`);
    expect(await page.getByRole('list', { name: 'Sample texts' }).locator('li').first().innerText()).toContain('track " the"');
  });

  test('records without a track field stop the sweep before it starts, naming them', async () => {
    await startSweep(untracked, 'no tokens');
    await expect.poll(() => page.getByRole('alert').filter({ hasText: /\S/ }).allInnerTexts()).toEqual([expect.stringMatching(/5 of the 5 examples' records name no token to follow: record 0 has no "track" field/)]);
    expect((await app.lab.call('runs.list', {})).length).toBe(0);
  });

  test('a sweep with "each record\'s track field" completes, and the measure switch plots the tracked token per layer', async () => {
    await startSweep(data, 'tracked sweep');
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 90_000 }).toBe('completed');
    const run = (await app.lab.call('runs.list', {}))[0];
    const shown = await app.lab.call('runs.get', { runId: run.id });
    expect(shown.track).toBe('record');
    await page.getByLabel("surprisal of each record's tracked token").check();
    const chart = page.locator('figure.chart', { hasText: "surprisal of each record's tracked token per layer" });
    await expect.poll(async () => JSON.parse((await chart.getAttribute('data-points')) ?? '{}')).toEqual({ logit_lens: LAYERS, patchscope: LAYERS, logitscope: LAYERS });
    await page.locator('.main-charts').screenshot({ path: path.join('test-output/e2e', 'tracked-charts.png') });
    expect(app.problems).toEqual([]);
  });

  test("the inspector shows each example's stored token and its exact numbers in every cell", async () => {
    const run = (await app.lab.call('runs.list', {}))[0];
    await page.getByRole('tab', { name: 'Inspector' }).click();
    for (const ordinal of [0, 1]) {
      const e = await app.lab.call('runs.example', { runId: run.id, ordinal });
      await page.getByLabel('Example', { exact: true }).fill(String(ordinal));
      await page.getByRole('button', { name: 'Show example' }).click();
      await expect.poll(() => page.getByText("This example follows its record's token").innerText()).toContain(`(id ${e.follow!.id})`);
      let outside = 0;
      for (const c of e.cells) {
        await expect.poll(() => page.locator(`#cell-${c.technique}-${c.layer} .follow-value`).innerText()).toBe(`followed: ${percent(c.followProb!)} · rank ${c.followRank}`);
        if (!c.topK.some((t) => t.id === e.follow!.id)) outside++;
      }
      expect(outside, 'cells where the token is outside the top-k still show a number').toBeGreaterThan(0);
    }
    await page.locator('.inspector-grid').screenshot({ path: path.join('test-output/e2e', 'tracked-inspector.png') });
    expect(app.problems).toEqual([]);
  });
});
