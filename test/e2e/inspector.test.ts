/**
 * The inspector's finder in headless Chromium against `serve` and a real Lab (tiny 3-layer
 * checkpoint, one finished sweep): "logit lens wrong at layer 0", sorting by surprisal, opening an
 * example from the list and from the heatmap, by mouse and by keyboard. Every list and heatmap is
 * checked against the run's examples as `runs.example` gives them. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView } from '../../src-main/api/contract.ts';
import { ResultStore } from '../../src-main/store/result-store.ts';
import { rowsFromResults } from '../../src-main/store/rows.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SHOTS, SKIP_REASON, type AppSession } from './harness.ts';

const LAYERS = 3;
const N = 30;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-inspector-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');

describe.skipIf(!HAS_CHROMIUM)(`the inspector finds the examples that matter, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  let examples: ExampleView[];
  const shot = (name: string) => app.shot(name);
  const list = () => page.locator('.finder-list tbody tr');
  /** The ordinals the list shows, in order. */
  const listed = async () => (await list().locator('th').allInnerTexts()).map((t) => Number(t.replace('#', '')));
  const cellOf = (e: ExampleView, technique: string, layer: number) => e.cells.find((c) => c.technique === technique && c.layer === layer)!;
  const openedHeading = () => page.locator('h3.example-heading').innerText();

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    const topics = ['the sea', 'a city', 'the old forest', 'a river', 'the mountains'];
    const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ text: `Line ${i} tells a story about ${topics[i % 5]} <b>and</b> more.`, meta: { pile_set_name: ['Wiki', 'Code'][i % 2] } }));
    fs.writeFileSync(data, lines.join('\n'));
    app = await openApp({
      tmp,
      prepare: async (l) => {
        await l.call('model.load', { dir: model });
        const { runId } = await l.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3, name: 'finder sweep' });
        await l.settled(runId);
        examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => l.call('runs.example', { runId, ordinal })));
      },
    });
    page = app.page;
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open finder sweep' }).click();
    await page.getByRole('tab', { name: 'Inspector' }).click();
  });

  afterAll(async () => app?.close());

  test('at first every example is listed in run order, for the first technique at the last layer, with units on every number', async () => {
    await expect.poll(() => list().count()).toBe(25);
    expect(await page.locator('.finder-bar .hint').innerText()).toMatch(/1–25 of 30 matching examples · logit lens at layer 2/);
    expect(await listed()).toEqual(examples.slice(0, 25).map((e) => e.ordinal));
    for (const t of await list().locator('td.num').allInnerTexts()) expect(t).toMatch(/^\d+\.\d\d nats$/);
    await page.getByRole('button', { name: 'Next page' }).click();
    await expect.poll(() => listed()).toEqual(examples.slice(25).map((e) => e.ordinal));
    await page.getByRole('button', { name: 'Previous page' }).click();
    await expect.poll(() => list().count()).toBe(25);
    const unnamed = await page.$$eval('[role=tabpanel] :is(button, input, select)', (els) =>
      els.filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.textContent?.trim())).map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
  });

  test('"logit lens wrong at layer 0" shows only the examples whose layer-0 logit lens top-1 is not the reference', async () => {
    const form = page.getByRole('form', { name: 'Example filter' });
    await form.getByLabel('Technique').selectOption('logit_lens');
    await form.getByLabel('Result').selectOption('wrong');
    await form.getByLabel('at layer').selectOption('0');
    await form.getByRole('button', { name: 'Find examples' }).click();
    const expected = examples.filter((e) => !cellOf(e, 'logit_lens', 0).correct).map((e) => e.ordinal);
    expect(expected.length).toBeGreaterThan(0);
    await expect.poll(() => page.locator('.finder-bar .hint').innerText()).toMatch(new RegExp(`of ${expected.length} matching examples · logit lens at layer 0`));
    await expect.poll(() => listed()).toEqual(expected.slice(0, 25));
    // The verdict's first line (its second says where the example commits).
    expect(new Set((await list().locator('td.verdict').allInnerTexts()).map((t) => t.split('\n')[0]))).toEqual(new Set(['✗ wrong']));
  });

  test('sorting by surprisal orders the list by the cell\'s surprisal, largest first, and says so to assistive tech', async () => {
    await page.getByRole('button', { name: /^s \(nats\)/ }).click();
    const expected = examples
      .filter((e) => !cellOf(e, 'logit_lens', 0).correct)
      .sort((a, b) => cellOf(b, 'logit_lens', 0).surprisal - cellOf(a, 'logit_lens', 0).surprisal || a.ordinal - b.ordinal)
      .map((e) => e.ordinal);
    await expect.poll(() => listed()).toEqual(expected.slice(0, 25));
    expect(await page.getByRole('columnheader', { name: /^s \(nats\)/ }).getAttribute('aria-sort')).toBe('descending');
    const shown = (await list().locator('td.num:nth-of-type(5)').allInnerTexts()).map((t) => parseFloat(t));
    expect(shown).toEqual([...shown].sort((a, b) => b - a));
    await shot('inspector-01-filtered-sorted');
  });

  test('an example opens from the list: its grid shows, with the cell it was found by in focus', async () => {
    const first = (await listed())[0];
    await page.getByRole('button', { name: `Open example ${first}` }).click();
    await expect.poll(() => openedHeading()).toBe(`Example ${first}`);
    const grid = page.getByRole('table', { name: /Top-k next tokens/ });
    await expect.poll(() => grid.locator('tbody tr').count()).toBe(LAYERS);
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('cell-logit_lens-0');
    expect(await page.locator('#cell-logit_lens-0').getAttribute('class') ?? '').not.toMatch(/hit/);
    // The source text is text: the markup in the records is shown, not rendered.
    expect(await page.locator('.source-text').innerText()).toContain('<b>and</b>');
    expect(await page.locator('.source-text b').count()).toBe(0);
  });

  test('the heatmap shows the page × every layer, coloured right/wrong or by surprisal with a legend in nats; a cell opens its example', async () => {
    await page.getByRole('button', { name: 'Heatmap' }).click();
    const heat = page.getByRole('table', { name: /logit lens: examples × layers/ });
    const rows = await listedFromHeatmap();
    await expect.poll(() => heat.getByRole('button').count()).toBe(rows.length * LAYERS);
    const e = examples[rows[1]];
    const c = cellOf(e, 'logit_lens', 1);
    const name = `example ${e.ordinal}, layer 1: ${c.correct ? 'right' : 'wrong'}, ${c.surprisal.toFixed(1)} nats`;
    const cell = heat.getByRole('button', { name, exact: true });
    expect(await cell.getAttribute('class')).toMatch(c.correct ? /heat-right/ : /heat-wrong/);
    // Every layer-0 cell is wrong: that is what was asked for.
    for (const r of rows) expect(await heat.getByRole('button', { name: new RegExp(`^example ${r}, layer 0: wrong`) }).count()).toBe(1);
    expect(await page.getByRole('list', { name: 'Legend' }).innerText()).toMatch(/right.*\n.*wrong/);
    await shot('inspector-02-heatmap');
    await page.getByRole('button', { name: 'Surprisal', exact: true }).click();
    expect(await cell.getAttribute('class')).toMatch(/heat-s[0-4]/);
    const legend = await page.getByRole('list', { name: 'Legend' }).locator('li').allInnerTexts();
    expect(legend).toHaveLength(5);
    for (const l of legend) expect(l).toMatch(/^\s*\d+\.\d–\d+\.\d nats$/);
    await shot('inspector-03-heatmap-surprisal');
    await cell.click();
    await expect.poll(() => openedHeading()).toBe(`Example ${e.ordinal}`);
    // Focus goes to the grid cell of the layer clicked.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('cell-logit_lens-1');
  });

  test('by keyboard: the heatmap is one tab stop, arrow keys move between cells, Enter opens; the list opens with Enter too', async () => {
    const heat = page.getByRole('table', { name: /examples × layers/ });
    const rows = await listedFromHeatmap();
    expect(await heat.locator('button[tabindex="0"]').count()).toBe(1);
    await heat.locator('button[tabindex="0"]').focus();
    await page.keyboard.press('Control+Home');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toMatch(new RegExp(`^example ${rows[2]}, layer 1: `));
    await page.keyboard.press('Enter');
    await expect.poll(() => openedHeading()).toBe(`Example ${rows[2]}`);

    await page.getByRole('button', { name: 'List' }).click();
    await page.getByRole('button', { name: `Open example ${rows[3]}` }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => openedHeading()).toBe(`Example ${rows[3]}`);
    expect(await page.getByRole('button', { name: `Open example ${rows[3]}` }).getAttribute('aria-current')).toBe('true');
    await shot('inspector-04-opened');
  });

  test('a reference token typed as text and a source narrow the list; a surprisal threshold in nats too', async () => {
    const form = page.getByRole('form', { name: 'Example filter' });
    await form.getByLabel('Result').selectOption('any');
    const reference = examples[0].reference.text;
    await form.getByLabel('Reference token').fill(reference.replace(/^ /, '␣'));
    await form.getByLabel('Source').fill('Code');
    await form.getByRole('button', { name: 'Find examples' }).click();
    const expected = examples.filter((e) => e.reference.id === examples[0].reference.id && e.source === 'Code');
    await expect.poll(() => page.locator('.finder-bar .hint').innerText()).toMatch(new RegExp(`of ${expected.length} matching|No example matches`));
    expect(new Set(await listed())).toEqual(new Set(expected.map((e) => e.ordinal)));

    await form.getByLabel('Reference token').fill('');
    await form.getByLabel('Source').fill('');
    await form.getByLabel('Surprisal above (nats)').fill('1000');
    await form.getByRole('button', { name: 'Find examples' }).click();
    await expect.poll(() => page.locator('.finder-bar .hint').innerText()).toMatch(/No example matches/);
    await form.getByLabel('Surprisal above (nats)').fill('');
    await form.getByRole('button', { name: 'Find examples' }).click();
    await page.setViewportSize({ width: 1024, height: 700 });
    await expect.poll(() => list().count()).toBe(25);
    // At 1024 px the list's last column (a number in nats) is not cut off by its scroll box.
    const scroller = await page.locator('.finder-list').evaluate((el) => el.scrollWidth - el.clientWidth);
    expect(scroller).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'inspector-05-1024x700.png') });
    expect(app.problems).toEqual([]);
  });

  test('a cancelled run whose first examples never finished opens on its first finished example, and names the unfinished ones', async () => {
    // A run as a cancel can leave it: 6 planned examples, only 3 and 5 stored (copied from the sweep).
    const store = ResultStore.open(path.join(tmp, 'results.sqlite'));
    let id: string;
    try {
      const [source] = store.listRuns({ status: 'completed' }).filter((r) => r.name === 'finder sweep');
      const run = store.getRun(source.id);
      id = store.createRun({
        // Its own model key: results are shared across runs of one model, and this run must own only two.
        name: 'scattered', model: { key: `${run.modelKey}:scattered`, path: run.modelPath, info: run.model }, files: run.files, protocol: run.protocol,
        techniques: run.resolvedTechniques, layers: run.layers, k: run.k, strategy: 'fast', codeVersion: 'e2e', examplesPlanned: 6,
      });
      const stored = store.runExamples(source.id).slice(0, 6);
      store.setRunExamples(id, stored.map(({ ordinal, recordIndex, source: src, text, tokens, position }) => ({ ordinal, recordIndex, source: src, text, tokens, position })));
      const results = store.runResults(source.id);
      store.saveBatch(id, rowsFromResults([results[3], results[5]], run.resolvedTechniques));
      store.finishRun(id, { status: 'cancelled' });
    } finally {
      store.close();
    }
    await page.setViewportSize({ width: 1440, height: 1000 });
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open scattered' }).click();
    await page.getByRole('tab', { name: 'Inspector' }).click();
    await expect.poll(() => openedHeading()).toBe('Example 3');
    expect(await page.getByRole('alert').filter({ hasText: /\S/ }).count()).toBe(0);
    await page.getByLabel('Example', { exact: true }).fill('1');
    await page.getByRole('button', { name: 'Show example' }).click();
    await expect.poll(async () => (await page.getByRole('alert').allInnerTexts()).join(' ')).toMatch(/Example 1 was not computed: the run stopped before it/);
    await page.getByLabel('Example', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Show example' }).click();
    await expect.poll(() => openedHeading()).toBe('Example 5');
  });

  /** The ordinals of the heatmap's rows, in order. */
  async function listedFromHeatmap(): Promise<number[]> {
    const heads = page.locator('table.heatmap tbody th');
    await expect.poll(() => heads.count()).toBeGreaterThan(2);
    return (await heads.allInnerTexts()).map((t) => Number(t.replace('#', '')));
  }
});
