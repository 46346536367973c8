/**
 * The measures researchers compare by (issue "The measures lens researchers compare by"), as a
 * user meets them: where each technique's predictions commit, two techniques of one run and two
 * runs with no example in common compared with the test that fits, and a published reference
 * table drawn beside the runs. The page's numbers are checked against runs.example recomputed
 * here. Screenshots go to test-output/e2e/compare-*.png.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExampleView, ExtractView } from '../../src-main/api/contract.ts';
import { commitsAt } from '../fixtures/commits-at.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SHOTS, SKIP_REASON, type AppSession } from './harness.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-compare-'));
const model = path.join(tmp, 'model');
const data = path.join(tmp, 'data.jsonl');
const otherData = path.join(tmp, 'other.jsonl');
const N = 12;

describe.skipIf(!HAS_CHROMIUM)(`comparisons, commitment layers and reference curves in the app${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  let examples: ExampleView[];
  let layers: number[];

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 21 });
    const lines = (what: string) => Array.from({ length: N }, (_, i) => JSON.stringify({ text: `${what} ${i} tells of the ${['sea', 'sky', 'hill', 'road'][i % 4]} and more of it.` })).join('\n');
    fs.writeFileSync(data, lines('Line'));
    fs.writeFileSync(otherData, lines('Another verse'));
    app = await openApp({
      tmp: path.join(tmp, 'app'),
      acceptDownloads: true,
      prepare: async (lab) => {
        await lab.call('model.load', { dir: model });
        const sweep = async (name: string, files: string[], techniques: { id: 'logit_lens' | 'logitscope' }[]) => {
          const { runId } = await lab.call('sweep.start', { files, preset: 'logitscope', techniques, layers: null, k: 3, name });
          await lab.settled(runId);
          return runId;
        };
        const runId = await sweep('two techniques', [data], [{ id: 'logit_lens' }, { id: 'logitscope' }]);
        await sweep('other slice', [otherData], [{ id: 'logit_lens' }, { id: 'logitscope' }]);
        examples = await Promise.all(Array.from({ length: N }, (_, ordinal) => lab.call('runs.example', { runId, ordinal })));
        layers = [...new Set(examples[0].cells.map((c) => c.layer))].sort((a, b) => a - b);
      },
    });
    page = app.page;
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open two techniques' }).click();
    await page.getByRole('heading', { name: 'Where predictions commit' }).waitFor();
  }, 240_000);
  afterAll(async () => app?.close());

  test("each technique's commitment histogram shows the layers recomputed from runs.example, with the median", async () => {
    for (const technique of ['logit_lens', 'logitscope']) {
      const figure = page.locator(`.commitment figure.histogram[data-technique="${technique}"]`);
      await figure.waitFor();
      const expected = examples.map((e) => commitsAt(e.cells, technique));
      const bars = [...layers.map((l) => [String(l), expected.filter((x) => x === l).length]), ['never', expected.filter((x) => x === null).length]];
      expect(JSON.parse((await figure.getAttribute('data-histogram'))!)).toEqual(bars);
      // n = 12 all commit here: the median is the mean of the 6th and 7th, the interval the 3rd to the 10th smallest.
      const sorted = expected.filter((x): x is number => x !== null).sort((a, b) => a - b);
      expect(sorted).toHaveLength(N);
      expect(await figure.locator('figcaption').innerText()).toBe(
        `${technique === 'logit_lens' ? 'logit lens' : 'logitscope'}: median layer ${(sorted[5] + sorted[6]) / 2}, 95% interval ${sorted[2]}–${sorted[9]} (coverage 96.1%); 0 of ${N} never commit`,
      );
      expect(await figure.locator('rect').count()).toBe(layers.length + 1);
    }
    await page.locator('.commitment').screenshot({ path: path.join(SHOTS, 'compare-commitment.png') });
    expect(app.problems).toEqual([]);
  });

  test('the finder lists each example\'s commitment layer and finds those that commit at layer ≥ L', async () => {
    await page.getByRole('tab', { name: 'Inspector' }).click();
    const form = page.getByRole('form', { name: 'Example filter' });
    await form.getByLabel('Technique').selectOption('logitscope');
    await form.getByLabel('Commits at ≥').selectOption(String(layers[1]));
    await form.getByRole('button', { name: 'Find examples' }).click();
    const late = examples.filter((e) => (commitsAt(e.cells, 'logitscope') ?? -Infinity) >= layers[1]);
    await expect.poll(() => page.locator('.finder-bar .hint').innerText()).toMatch(new RegExp(`^1–${late.length} of ${late.length} matching examples`));
    const shown = await page.locator('.finder-list tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent!.trim(), tr.querySelector('.commits')!.textContent!.trim()]));
    expect(shown).toEqual(late.map((e) => [`#${e.ordinal}`, `layer ${commitsAt(e.cells, 'logitscope')}`]));
    await page.locator('.finder').screenshot({ path: path.join(SHOTS, 'compare-finder-commits.png') });
    await page.getByRole('tab', { name: 'Charts' }).click();
  });

  test('two techniques of one run are compared paired per example, and the view says so and why', async () => {
    const compare = page.locator('.compare');
    await expect.poll(() => compare.locator('.test-used').innerText()).toMatch(/^Paired within one run, because both techniques read every example of this run/);
    expect(await page.getByLabel('A =').inputValue()).toBe('logit_lens');
    expect(await page.getByLabel('B =').inputValue()).toBe('logitscope');
    const rows = compare.locator('table.difference-tests tbody tr');
    await expect.poll(() => rows.count()).toBe(layers.length);
    for (const [i, layer] of layers.entries()) {
      const cell = (e: ExampleView, t: string) => e.cells.find((c) => c.technique === t && c.layer === layer)!;
      const d = examples.map((e) => Number(cell(e, 'logitscope').correct) - Number(cell(e, 'logit_lens').correct));
      const [onlyA, onlyB] = [d.filter((x) => x === -1).length, d.filter((x) => x === 1).length];
      const cells = await rows.nth(i).locator('th, td').allInnerTexts();
      expect(cells.slice(0, 3)).toEqual(['logitscope − logit lens', String(layer), String(N)]);
      expect(cells[3]).toMatch(new RegExp(`^${(d.reduce((s, x) => s + x, 0) / N).toFixed(3).replace('.', '\\.')} \\[`));
      expect(cells.slice(4, 6)).toEqual([String(onlyA), String(onlyB)]);
    }
    await compare.screenshot({ path: path.join(SHOTS, 'compare-within-run.png') });
  });

  test('a run with no example in common is compared unpaired, labelled so, with each side\'s n', async () => {
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Overlay other slice on the shown run' }).click();
    await page.getByRole('tab', { name: 'Charts' }).click();
    const compare = page.locator('.compare');
    await expect.poll(() => compare.locator('.test-used').getAttribute('data-test')).toBe('unpaired');
    expect(await compare.locator('.test-used').innerText()).toMatch(/^Unpaired \(independent samples\) \(labelled so: no example is in both runs\), because the runs share no example .*Newcombe.*Welch/);
    const header = await compare.locator('table.difference-tests thead').innerText();
    expect(header).not.toMatch(/McNemar/);
    const rows = compare.locator('table.difference-tests tbody tr');
    await expect.poll(() => rows.count()).toBe(2 * layers.length);
    expect(await rows.first().locator('td').nth(1).innerText()).toBe(`${N} + ${N}`);
    await compare.screenshot({ path: path.join(SHOTS, 'compare-unpaired.png') });
    // Back to the within-run question: the same view, the other test.
    await page.getByRole('button', { name: 'Two techniques of this run' }).click();
    await expect.poll(() => compare.locator('.test-used').getAttribute('data-test')).toBe('within-run');
    await page.getByRole('button', { name: 'Remove all overlays' }).click();
  });

  test('the logit-lens picture marks, per technique and position, the first committed layer recomputed from the cells', async () => {
    await page.getByRole('tab', { name: 'Extract' }).click();
    await page.getByLabel('Prompt', { exact: true }).fill('Line 3 tells of the road and more of it.');
    await page.getByLabel('every position (the logit-lens picture)').check();
    const reply = page.waitForResponse((r) => r.url().endsWith('/api/extract')).then(async (r) => (await r.json()).result as ExtractView);
    await page.getByRole('button', { name: 'Run extraction' }).click();
    const view = await reply;
    await page.locator('table.lens').first().waitFor();
    let marked = 0;
    for (const t of ['logit_lens', 'logitscope']) {
      // Per column, the row (layer index) of its one marked cell, or none.
      const rows = await page.locator(`table.lens[data-technique="${t}"] tbody`).evaluate((tbody) => {
        const trs = [...tbody.querySelectorAll('tr')];
        return [...trs[0].querySelectorAll('td')].map((_, ci) => trs.flatMap((tr, li) => (tr.querySelectorAll('td')[ci].querySelector('.commits') ? [li] : [])));
      });
      const expected = view.columns!.map((c) => {
        const at = commitsAt(c.cells, t);
        return at === null ? [] : [view.layers.indexOf(at)];
      });
      expect(rows).toEqual(expected);
      marked += expected.flat().length;
    }
    expect(marked).toBeGreaterThan(0);
    // The saved picture carries the same marks: one bar per technique and position that commits.
    const [saved] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save picture as SVG' }).click()]);
    const bars = fs.readFileSync((await saved.path())!, 'utf8').match(/height="3" fill="#d55e00"/g) ?? [];
    expect(bars).toHaveLength(view.techniques.flatMap((t) => view.columns!.filter((c) => commitsAt(c.cells, t.id) !== null)).length);
    await page.locator('.lens-panels-list').screenshot({ path: path.join(SHOTS, 'compare-lens-commits.png') });
    await page.getByRole('tab', { name: 'Charts' }).click();
  });

  test('a built-in and an imported reference table are drawn dash-dot, named in the legend and in the exported figure, and kept across reloads', async () => {
    const chart = page.locator('.main-charts figure.chart').first();
    await page.getByText(/^Reference curves/).click();
    await page.getByRole('checkbox', { name: /seed project \(logitscope\), GPT-J 6B/ }).check();
    await expect.poll(async () => JSON.parse((await chart.getAttribute('data-references'))!)).toEqual(['reference: seed project (logitscope), GPT-J 6B, 698 Pile prompts']);
    const picked = path.join(tmp, 'my lab.csv');
    fs.writeFileSync(picked, `layer,technique,metric,value,n\n${layers.map((l, i) => `${l},logit_lens,precision_at_1,${0.2 + 0.3 * i},40`).join('\n')}\n`);
    await page.getByLabel('Import a reference table (.json or .csv)').setInputFiles(picked);
    await expect.poll(async () => JSON.parse((await chart.getAttribute('data-references'))!)).toHaveLength(2);
    const legend = page.getByRole('list', { name: 'Legend: precision@1 per layer' });
    expect(await legend.getByRole('button', { name: 'Show logit lens of reference: my lab on the chart precision@1 per layer' }).count()).toBe(1);
    await page.locator('.main-charts').screenshot({ path: path.join(SHOTS, 'compare-reference-overlay.png') });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save precision chart as SVG' }).click()]);
    const svg = fs.readFileSync((await download.path())!, 'utf8');
    expect(svg).toContain('dash-dot: reference: my lab');
    expect(svg).toContain('dash-dot: reference: seed project (logitscope), GPT-J 6B, 698 Pile prompts');
    expect(svg).toContain('stroke-dasharray="5 2 1 2 1 2"');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save precision chart data as CSV' }).click()]);
    expect(fs.readFileSync((await csv.path())!, 'utf8')).toMatch(/^reference: my lab,reference:my lab\.csv,logit_lens,0,40,0\.2,,\r?$/m);

    // A bad file is refused with every problem named, and nothing new is drawn.
    const bad = path.join(tmp, 'bad.csv');
    fs.writeFileSync(bad, 'layer,technique,metric,value\nx,logit_lens,loss,1\n');
    await page.getByLabel('Import a reference table (.json or .csv)').setInputFiles(bad);
    await expect.poll(() => page.locator('.references').innerText()).toMatch(/reference_parse[\s\S]*line 2\.layer[\s\S]*line 2\.metric/);
    expect(JSON.parse((await chart.getAttribute('data-references'))!)).toHaveLength(2);

    await page.reload();
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open two techniques' }).click();
    await expect.poll(async () => JSON.parse((await page.locator('.main-charts figure.chart').first().getAttribute('data-references')) ?? '[]')).toHaveLength(2);
    expect(app.problems.filter((p) => !/reference_parse|400/.test(p))).toEqual([]);
  });
});
