/**
 * Following a token in the inspector, in headless Chromium against `serve` and a real Lab (tiny
 * 3-layer checkpoint, one finished sweep with k = 3): a token pinned from the grid shows its exact
 * probability and rank in every cell, also where it is outside the stored top-3, as `runs.follow`
 * gives them; it stays pinned on the next example; "Stop following" lets it go; and with another
 * model loaded the view says which model to load. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView } from '../../src-main/api/contract.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const N = 4;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-inspector-follow-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');

describe.skipIf(!HAS_CHROMIUM)(`the inspector follows a pinned token in every cell, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  let runId: string;
  let examples: ExampleView[];
  /** The grid's percentages: two significant digits, as TopKGrid writes them. */
  const percent = (p: number) => `${Number((p * 100).toPrecision(2))}%`;
  const followValue = (technique: string, layer: number) => page.locator(`#cell-${technique}-${layer} .follow-value`);

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    fs.writeFileSync(data, Array.from({ length: N }, (_, i) => JSON.stringify({ text: `Line ${i} tells a story about the sea and more.` })).join('\n'));
    app = await openApp({
      tmp,
      prepare: async (l) => {
        await l.call('model.load', { dir: model });
        ({ runId } = await l.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3, name: 'follow sweep' }));
        await l.settled(runId);
        examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => l.call('runs.example', { runId, ordinal })));
      },
    });
    page = app.page;
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open follow sweep' }).click();
    await page.getByRole('tab', { name: 'Inspector' }).click();
  });

  afterAll(async () => app?.close());

  /** Every cell shows the followed token's numbers, exactly those runs.follow gives for the example. */
  async function expectFollowed(ordinal: number, token: number): Promise<void> {
    const want = await app.lab.call('runs.follow', { runId, ordinal, token });
    for (const c of want.cells) await expect.poll(() => followValue(c.technique, c.layer).innerText()).toBe(`followed: ${percent(c.prob)} · rank ${c.rank}`);
  }

  test('a token pinned from a cell shows its exact probability and rank in every cell, also where it is outside the top-3', async () => {
    const e = examples[0];
    const pinnedCell = e.cells.find((c) => c.technique === 'logit_lens' && c.layer === 0)!;
    const token = pinnedCell.topK[0];
    const outside = e.cells.filter((c) => !c.topK.some((t) => t.id === token.id));
    expect(outside.length).toBeGreaterThan(0);
    await expect.poll(() => page.locator('h3.example-heading').innerText()).toBe('Example 0');
    await page.locator('#cell-logit_lens-0').getByRole('button', { name: new RegExp(`\\(id ${token.id}\\)$`) }).click();
    await expect.poll(() => page.locator('.follow-bar').innerText()).toContain(`(id ${token.id})`);
    await expectFollowed(0, token.id);
    // Outside the top-3 it is a number, ranked past 3: never a gap or a grey "not in top-k".
    for (const c of outside) expect(Number(/rank (\d+)$/.exec(await followValue(c.technique, c.layer).innerText())![1])).toBeGreaterThan(3);
    expect(await page.getByRole('table', { name: /Top-k next tokens/ }).innerText()).not.toMatch(/not in top/i);
    await page.locator(`#cell-${outside[0].technique}-${outside[0].layer}`).scrollIntoViewIfNeeded();
    await app.shot('inspector-follow-01-pinned');
  });

  test('the pin stays on the next example, computed again for it; "Stop following" lets it go', async () => {
    const token = examples[0].cells.find((c) => c.technique === 'logit_lens' && c.layer === 0)!.topK[0].id;
    await page.getByRole('button', { name: 'Next example' }).click();
    await expect.poll(() => page.locator('h3.example-heading').innerText()).toBe('Example 1');
    await expectFollowed(1, token);
    await page.getByRole('button', { name: 'Stop following' }).click();
    await expect.poll(() => page.locator('.follow-value').count()).toBe(0);
    expect(await page.locator('.follow-bar').innerText()).toMatch(/Click a token in the grid to follow it/);
  });

  test('with another model loaded, pinning says which model to load instead of showing numbers', async () => {
    const other = path.join(tmp, 'other-gptj');
    writeTinyGptj({ dir: other, format: 'safetensors', seed: 6 });
    await app.lab.call('model.load', { dir: other });
    await page.locator('#cell-logit_lens-0').getByRole('button').first().click();
    const note = page.locator('.model-needed');
    await expect.poll(() => note.count()).toBe(1);
    expect(await note.innerText()).toContain(fs.realpathSync(model));
    expect(await page.locator('.follow-value').count()).toBe(0);
    await app.shot('inspector-follow-02-model-needed');
    expect(app.problems).toEqual([]);
  });
});
