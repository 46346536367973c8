/**
 * The browser end to end: the real renderer bundle in headless Chromium, against `startServer`
 * and a real Lab (tiny 3-layer checkpoint, SQLite file), driven by roles and labels as a keyboard
 * or screen-reader user would find the controls. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Lab } from '../../src-main/api/lab.ts';
import type { RunningServer } from '../../src-main/serve.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SHOTS, SKIP_REASON, type AppSession } from './harness.ts';
import { addStoppedRun } from './stopped-runs.ts';
import { addUnmeasuredRun } from './unmeasured-run.ts';
const LAYERS = 3;
const TECHNIQUES = 4; // three built-ins and one custom patchscope

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'sentences.jsonl');
const broken = path.join(tmp, 'broken.parquet');
const many = path.join(tmp, 'many.jsonl');
const garbage = path.join(tmp, 'garbage.jsonl');
const dbPath = path.join(tmp, 'results.sqlite');

/** technique → points drawn, for each chart on the page (the charts' `data-points` attribute). */
const drawnPoints = (page: Page) =>
  page.$$eval('.main-charts figure.chart', (figures) => figures.map((f) => JSON.parse((f as HTMLElement).dataset.points ?? '{}') as Record<string, number>));

const everyChartFull = (page: Page, techniques: number) =>
  page.waitForFunction(
    ([t, l]) =>
      [...document.querySelectorAll('.main-charts figure.chart')].every((f) => {
        const counts = Object.values(JSON.parse((f as HTMLElement).dataset.points ?? '{}')) as number[];
        return counts.length === t && counts.every((n) => n === l);
      }) && document.querySelectorAll('.main-charts figure.chart').length === 3,
    [techniques, LAYERS],
    { timeout: 60_000 },
  );

describe.skipIf(!HAS_CHROMIUM)(`the app in headless Chromium against \`serve\`${SKIP_REASON}`, () => {
  let app: AppSession;
  let lab: Lab;
  let server: RunningServer;
  let page: Page;
  const sweepRequests: Record<string, unknown>[] = [];
  const shot = (name: string) => app.shot(name);
  const alertText = () => page.getByRole('alert').filter({ hasText: /\S/ }).allInnerTexts();

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    // 13 or 15 words each, so a word limit of 14 lets 4 of the 6 through.
    const topics = ['the sea', 'the deep blue sky', 'a city', 'the old dark forest', 'a river', 'the mountains'];
    fs.writeFileSync(data, topics.map((t, i) => JSON.stringify({ text: `Sentence ${i} is a short story about ${t} and what lives there.` })).join('\n'));
    fs.writeFileSync(broken, 'this is not parquet at all');
    // 5 lines that are not JSON, 2 without text, 1 that passes.
    fs.writeFileSync(garbage, ['{oops', 'nope', '[1,', '<b>x</b>', '}', '{"title":"no text"}', '{"text":null}', '{"text":"A fine line."}'].join('\n'));
    // Enough examples for several batches, so a cancel lands before the sweep is done.
    fs.writeFileSync(many, Array.from({ length: 700 }, (_, i) => JSON.stringify({ text: `Record ${i} is one more line about ${topics[i % topics.length]}.` })).join('\n'));
    app = await openApp({ tmp, acceptDownloads: true });
    ({ lab, server, page } = app);
    page.on('request', (r) => r.url().endsWith('/api/sweep.start') && sweepRequests.push(r.postDataJSON()));
  });

  afterAll(async () => app?.close());

  test('the page loads without the token in its address bar, and every control has an accessible name', async () => {
    await expect.poll(() => page.getByRole('heading', { name: 'Logitscope Lab' }).isVisible()).toBe(true);
    expect(page.url()).not.toContain('token');
    const unnamed = await page.$$eval('button, input, select, textarea', (els) =>
      els
        .filter((el) => {
          const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
          return !labelled && !(el.tagName === 'BUTTON' && el.textContent?.trim());
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    // The first Tab reaches a skip link past the setup column to the results.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to the results');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('results');
  });

  test('on a first start the demo is the primary action, the empty pane says what it does, and "Run sweep" says why it waits', async () => {
    const demo = page.getByRole('button', { name: 'Run the demo' });
    await expect.poll(() => demo.count()).toBe(2);
    expect(await page.locator('aside').getByRole('button', { name: 'Run the demo' }).getAttribute('class')).toMatch(/primary/);
    expect(await page.getByRole('tabpanel').innerText()).toMatch(/Run the demo loads the built-in 6-layer demo GPT-J and sweeps 300 examples/);
    const runSweep = page.getByRole('button', { name: 'Run sweep' });
    expect(await runSweep.isDisabled()).toBe(true);
    expect((await runSweep.getAttribute('class')) ?? '').not.toMatch(/primary/);
    const reason = await runSweep.getAttribute('aria-describedby');
    expect(await page.locator(`#${reason}`).innerText()).toMatch(/Load a model first/);
    await shot('00-first-run');
  });

  test('a directory that is not a checkpoint gets a clear message; the tiny checkpoint then loads', async () => {
    await page.getByLabel('Checkpoint directory').fill(tmp);
    await page.getByRole('button', { name: 'Load model' }).click();
    await expect.poll(alertText).toEqual([expect.stringMatching(/config_missing/)]);
    expect((await alertText())[0]).toContain('config.json');
    await shot('01-model-not-a-checkpoint');
    await page.getByLabel('Checkpoint directory').fill(model);
    // The old error is about the old directory.
    await expect.poll(alertText).toEqual([]);
    await page.getByRole('button', { name: 'Load model' }).click();
    expect(await page.getByRole('button', { name: 'Run sweep' }).isDisabled()).toBe(true);
    expect(await page.locator('#run-blocker').innerText()).toMatch(/A model is loading/);
    const facts = page.getByRole('definition').filter({ hasText: '3 · 64' });
    await expect.poll(() => facts.count(), { timeout: 60_000 }).toBe(1);
    expect(await alertText()).toEqual([]);
    await expect.poll(() => page.getByRole('button', { name: 'Run sweep' }).isEnabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Run sweep' }).getAttribute('class')).toMatch(/primary/);
    expect(await page.locator('aside').getByRole('button', { name: 'Run the demo' }).getAttribute('class')).toMatch(/secondary/);
    await shot('02-model-loaded');
  });

  test('a dataset file that does not parse gets a clear message; a good one previews its slice', async () => {
    const files = page.getByLabel('Dataset files, one path per line');
    await files.fill(broken);
    await page.getByRole('button', { name: 'Preview slice' }).click();
    await expect.poll(alertText).toEqual([expect.stringMatching(/dataset_parse/)]);
    await files.fill(garbage);
    await expect.poll(alertText).toEqual([]);
    await page.getByRole('button', { name: 'Preview slice' }).click();
    await expect.poll(() => page.locator('.preview-count').innerText()).toMatch(/1 of 8 records pass the filter/);
    const reasons = page.getByRole('list', { name: 'Why records do not pass' });
    expect(await reasons.getByRole('listitem').allInnerTexts()).toEqual(['5 not valid JSON', '2 have no "text" field']);
    await shot('03a-dataset-reasons');
    await files.fill(data);
    await page.getByText('Slice and filter').click();
    await page.getByLabel('Limit', { exact: true }).fill('5');
    await page.getByLabel('Max words', { exact: true }).fill('14');
    await page.getByRole('button', { name: 'Preview slice' }).click();
    await expect.poll(() => page.locator('.preview-count').innerText()).toMatch(/4 of 6 records pass the filter/);
    expect(await page.getByRole('list', { name: 'Sample texts' }).getByRole('listitem').count()).toBeGreaterThan(0);
    await shot('03-dataset-preview');
    await page.getByLabel('Max words', { exact: true }).fill('');
    await expect.poll(() => page.locator('.preview-count').count()).toBe(0);
  });

  test('a sweep with nothing selected is refused with a message, and the app keeps working', async () => {
    for (const name of ['logit lens', 'token-identity patchscope', 'logitscope']) await page.getByLabel(name, { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(alertText).toEqual([expect.stringMatching(/Nothing to run/)]);
    await shot('04-sweep-nothing-selected');
  });

  test('a sweep with a custom patchscope fills both charts to one point per layer for every technique', async () => {
    for (const name of ['logit lens', 'token-identity patchscope', 'logitscope']) await page.getByLabel(name, { exact: true }).check();
    await page.getByRole('button', { name: 'Add custom patchscope' }).click();
    await page.getByLabel('Custom patchscope 1: target prompt').fill('hello->there;?->');
    await page.getByLabel('Target layer', { exact: true }).selectOption('fixed');
    await page.getByLabel('Custom patchscope 1: fixed target layer').fill('1');
    await page.getByLabel('Run name (optional)').fill('e2e sweep');
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await everyChartFull(page, TECHNIQUES);
    expect(sweepRequests.at(-1)).not.toHaveProperty('recompute');
    const drawn = await drawnPoints(page);
    // precision@1, surprisal and the per-row measure (KL first).
    expect(drawn).toEqual([0, 1, 2].map(() => ({ logit_lens: LAYERS, patchscope: LAYERS, logitscope: LAYERS, custom_1: LAYERS })));
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('completed');
    await expect.poll(() => page.getByRole('progressbar', { name: 'Sweep progress' }).evaluate((el) => (el as HTMLProgressElement).value)).toBe(5);
    expect(await page.locator('.progress').innerText()).toMatch(/5 \/ 5 examples/);
    await shot('05-charts-seed-convention');
    await page.getByRole('radio', { name: /surprisal \(paper\)/ }).check();
    await expect.poll(() => page.locator('figure.chart figcaption').nth(1).innerText()).toMatch(/^surprisal \(paper\): −ln p_model\(technique's top-1\)/);
    await everyChartFull(page, TECHNIQUES);
    await shot('06-charts-paper-convention');
  });

  test('the measure switch charts KL, rank and entropy per layer with the run summary\'s means and n', async () => {
    const runId = (await lab.call('runs.list', {})).find((r) => r.name === 'e2e sweep')!.id;
    const { summary } = await lab.call('runs.get', { runId });
    const measureChart = page.locator('.main-charts figure.chart').nth(2);
    const labels = { kl: 'KL(p_model ‖ p_technique)', rank: "rank of the model's top-1 (0 = technique's top-1)", entropy: 'entropy of the technique' } as const;
    for (const [measure, label] of Object.entries(labels) as [keyof typeof labels, string][]) {
      await page.getByRole('radio', { name: label, exact: true }).check();
      const title = `${label} per layer`;
      await expect.poll(() => measureChart.locator('figcaption').innerText()).toBe(title);
      await everyChartFull(page, TECHNIQUES);
      // The chart's table holds the run summary's means (3 decimals) and n, per technique and layer.
      const table = measureChart.locator('details');
      await table.locator('summary').click();
      for (const s of summary.filter((r) => r.technique === 'logit_lens')) {
        const m = s.measures!;
        expect(m.n).toBe(s.n);
        const row = table.locator('tbody tr').nth(s.layer);
        await expect.poll(() => row.locator('td').first().innerText()).toContain(`${m[measure].mean.toFixed(3)}`);
        expect(await row.locator('td').first().innerText()).toContain(`n=${m.n}`);
      }
      await table.locator('summary').click();
      if (measure === 'kl') {
        // At the last layer the logit lens is the model's own distribution: KL 0.
        expect(Math.abs(summary.find((r) => r.technique === 'logit_lens' && r.layer === LAYERS - 1)!.measures!.kl.mean)).toBeLessThan(1e-5);
      }
      await shot(`06-charts-measure-${measure}`);
    }
  });

  test('the inspector opens on a chart point: text with the position marked, the reference, and the top-k grid', async () => {
    await page.getByText('Table: precision@1 per layer').click();
    await page.getByRole('button', { name: `Inspect logit lens at layer ${LAYERS - 1}` }).click();
    await expect.poll(() => page.getByRole('tab', { name: 'Inspector' }).getAttribute('aria-selected')).toBe('true');
    const grid = page.getByRole('table', { name: /Top-k next tokens/ });
    await expect.poll(() => grid.locator('tbody tr').count()).toBe(LAYERS);
    expect(await grid.locator('thead th').count()).toBe(1 + TECHNIQUES);
    expect(await page.locator('.source-text mark.chosen').count()).toBe(1);
    expect(await page.locator('code.reference').innerText()).not.toBe('');
    // At the last layer the logit lens reads the model's own output, so it matches the reference.
    const focused = page.locator(`#cell-logit_lens-${LAYERS - 1}`);
    expect(await focused.getAttribute('class')).toMatch(/hit/);
    expect(await focused.evaluate((el) => el === document.activeElement)).toBe(true);
    await shot('07-inspector');
    await page.getByRole('button', { name: 'Next example' }).click();
    await expect.poll(() => page.getByLabel('Example', { exact: true }).inputValue()).toBe('1');
  });

  test('the tabs work from the keyboard', async () => {
    await page.getByRole('tab', { name: 'Inspector' }).focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('tab', { name: 'Runs' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-runs');
  });

  test('the run is in the history; it re-opens into the charts and exports JSON, CSV and PNG', async () => {
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'e2e sweep' }) });
    await expect.poll(() => row.count()).toBe(1);
    await page.getByLabel('Status').selectOption('failed');
    await expect.poll(() => row.count()).toBe(0);
    await page.getByLabel('Status').selectOption('completed');
    await expect.poll(() => row.count()).toBe(1);
    await shot('08-runs');

    const save = async (button: string) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
      return { name: download.suggestedFilename(), bytes: fs.readFileSync((await download.path())!) };
    };
    const json = await save('Export e2e sweep as JSON');
    expect(json.name).toMatch(/\.json$/);
    expect(JSON.parse(json.bytes.toString()).examples).toHaveLength(5);
    const csv = await save('Export e2e sweep as CSV');
    expect(csv.bytes.toString().split('\n').length).toBeGreaterThan(5 * LAYERS * TECHNIQUES);

    await page.getByRole('tab', { name: 'Charts' }).click();
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open e2e sweep' }).click();
    await everyChartFull(page, TECHNIQUES);
    const png = await save('Save precision chart as PNG');
    expect(png.name).toBe('e2e sweep-precision.png');
    expect(png.bytes.subarray(1, 4).toString()).toBe('PNG');
    // IHDR: a 960 × 600 figure at 2×.
    expect([png.bytes.readUInt32BE(16), png.bytes.readUInt32BE(20)]).toEqual([1920, 1200]);
    fs.writeFileSync(path.join(SHOTS, '13-figure-precision.png'), png.bytes);
    const svg = (await save('Save surprisal chart as SVG')).bytes.toString();
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const text of ["surprisal (seed): −ln p_technique(model&#39;s top-1) per layer", 'in nats', 'e2e sweep · n = 5 examples per point', 'Student t', 'hello-&gt;there']) expect(svg).toContain(text);
    const csv2 = (await save('Save precision chart data as CSV')).bytes.toString().trim().split('\r\n'); // CRLF, as every CSV the app writes (src-main/csv.ts)
    expect(csv2[0]).toBe('run,run_id,technique,layer,n,mean,low,high');
    expect(csv2).toHaveLength(1 + TECHNIQUES * LAYERS);
    expect(csv2[1]).toMatch(/^e2e sweep,[0-9a-f-]{36},logit_lens,0,5,/);
  });

  test('a second run overlays the first, and can be deleted from the history', async () => {
    for (const name of ['token-identity patchscope', 'logitscope']) await page.getByLabel(name, { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Remove custom patchscope 1' }).click();
    await page.getByLabel('Position seed').fill('1');
    await page.getByLabel('Run name (optional)').fill('second');
    await page.getByLabel('Recompute (ignore cached rows)').check();
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await everyChartFull(page, 1);
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('completed');
    expect(sweepRequests.at(-1)).toMatchObject({ name: 'second', recompute: true });
    await page.getByLabel('Recompute (ignore cached rows)').uncheck();
    // A third run: the same slice as the first with seed 2 and only the logit lens.
    await page.getByLabel('Position seed').fill('2');
    await page.getByLabel('Run name (optional)').fill('third');
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(() => page.locator('.run-heading h2').innerText(), { timeout: 60_000 }).toMatch(/^third\s+completed/);
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open e2e sweep' }).click();
    await expect.poll(() => page.locator('.run-heading h2').innerText()).toMatch(/^e2e sweep/);
    // Focus follows what was opened.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('run-title');
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Overlay second on the shown run' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Overlay second on the shown run' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('button', { name: 'Overlay third on the shown run' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Overlay third on the shown run' }).getAttribute('aria-pressed')).toBe('true');
    await page.getByRole('tab', { name: 'Charts' }).click();
    await expect.poll(() => page.locator('.overlays').innerText()).toMatch(/Overlaid runs \(dashed\):\s+second[\s\S]*third/);
    await everyChartFull(page, TECHNIQUES);
    expect(await page.locator('.main-charts figure.chart').first().getAttribute('data-runs')).toBe('3');
    // The legend is outside the canvas: one toggle per run and technique, and keys work it.
    const precisionLegend = page.getByRole('list', { name: 'Legend: precision@1 per layer' });
    expect(await precisionLegend.getByRole('button').count()).toBe(TECHNIQUES + 1 + 1);
    const toggle = precisionLegend.getByRole('button', { name: 'Show logit lens of third on the chart precision@1 per layer' });
    await toggle.focus();
    await page.keyboard.press('Space');
    expect(await toggle.getAttribute('aria-pressed')).toBe('false');
    await page.keyboard.press('Enter');
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');
    await shot('09-overlay');

    // The difference view pairs the examples both runs computed (the same 5, other positions: none shared).
    await expect.poll(() => page.getByRole('heading', { name: 'Difference: B − A per layer' }).isVisible()).toBe(true);
    await page.getByLabel('B =').selectOption({ label: 'third' });
    await expect.poll(() => page.locator('.compare').innerText()).toMatch(/Paired over the \d+ examples both runs computed/);
    const seedRow = page.locator('table.settings-diff tr[data-setting="protocol.positionSeed"]');
    await expect.poll(() => seedRow.innerText()).toMatch(/^protocol\.positionSeed\s+\(differs\)\s+0\s+2$/);
    expect(await page.locator('table.settings-diff thead').innerText()).toMatch(/A: e2e sweep\s+B: third/);
    await shot('09b-difference');

    await page.getByRole('tab', { name: 'Runs' }).click();
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete second' }).click();
    await expect.poll(() => page.getByRole('rowheader', { name: 'second' }).count()).toBe(0);
    expect((await lab.call('runs.list', {})).map((r) => r.name)).toEqual(['third', 'e2e sweep']);
    await page.getByRole('tab', { name: 'Charts' }).click();
  });

  test('a run can be renamed and given notes and tags; the run table sorts and filters by them', async () => {
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open third' }).click();
    await page.getByText('Name, notes and tags', { exact: true }).click();
    await page.getByLabel('Run name', { exact: true }).fill('third <img src=x onerror=alert(1)>');
    await page.getByLabel('Notes').fill('seed 2, <b>lens only</b>');
    await page.getByLabel('Tags, separated by commas').fill('lens, seed-2');
    await page.getByRole('button', { name: 'Save name, notes and tags' }).click();
    await expect.poll(() => page.locator('.run-heading h2').innerText()).toMatch(/^third <img src=x onerror=alert\(1\)>/);
    expect(await page.getByRole('list', { name: 'Tags' }).getByRole('listitem').allInnerTexts()).toEqual(['lens', 'seed-2']);
    expect(await page.locator('.notes').innerText()).toBe('seed 2, <b>lens only</b>');
    expect(await page.locator('img').count()).toBe(0);
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByLabel('Status').selectOption('');
    const names = () => page.locator('table.runs tbody th[scope=row]').evaluateAll((ths) => ths.map((th) => th.firstChild?.textContent ?? ''));
    await expect.poll(names).toEqual(expect.arrayContaining(['third <img src=x onerror=alert(1)>', 'e2e sweep']));
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    expect(await page.getByRole('columnheader', { name: 'Run' }).getAttribute('aria-sort')).toBe('ascending');
    const sorted = await names();
    expect(sorted).toEqual([...sorted].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())));
    await page.getByLabel('Name, notes or tags contain').fill('seed-2');
    await expect.poll(names).toEqual(['third <img src=x onerror=alert(1)>']);
    await shot('14-runs-tags');
    await page.getByLabel('Name, notes or tags contain').fill('');
    await page.getByRole('button', { name: 'Open e2e sweep' }).click();
  });

  test('a running sweep cancels, keeps what it finished, and resumes to completion', async () => {
    await page.getByLabel('Dataset files, one path per line').fill(many);
    await page.getByLabel('Limit', { exact: true }).fill('600');
    for (const name of ['token-identity patchscope', 'logitscope']) await page.getByLabel(name, { exact: true }).check();
    await page.getByLabel('Run name (optional)').fill('cancel me');
    // The start request answers once the slice is prepared; held back here, the pane must say what is going on.
    let held: Promise<void> = Promise.resolve();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/api/sweep.start', (route) => {
      held = (async () => {
        const response = await route.fetch();
        await released; // until the preparing pane has been checked below
        await route.fulfill({ response });
      })();
      return held;
    });
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Preparing the sweep' }).isVisible()).toBe(true);
    expect(await page.getByRole('tabpanel').innerText()).toMatch(/Reading the dataset slice/);
    // How far the reading got, from the sweep.preparing events of this window's request.
    await expect.poll(() => page.getByRole('tabpanel').innerText()).toMatch(/600 records read · 600 pass the filter · 0 filtered out/);
    await shot('10a-preparing');
    release();
    await held;
    await page.unroute('**/api/sweep.start');
    const bar = page.getByRole('progressbar', { name: 'Sweep progress' });
    await expect.poll(() => bar.evaluate((el) => (el as HTMLProgressElement).value), { timeout: 60_000 }).toBeGreaterThan(0);
    // Live: the curves are drawn before the run ends, and the inspector counts what is done so far.
    await expect.poll(async () => (await drawnPoints(page))[0].logit_lens ?? 0).toBe(LAYERS);
    expect(await page.locator('.run-heading .status').innerText()).toBe('running');
    await shot('10b-live');
    await page.getByRole('tab', { name: 'Inspector' }).click();
    const doneSoFar = Number(/of (\d+) done/.exec(await page.locator('form.row .hint').innerText())?.[1]);
    expect(doneSoFar).toBeGreaterThan(0);
    expect(doneSoFar).toBeLessThanOrEqual(await bar.evaluate((el) => (el as HTMLProgressElement).value));
    await page.getByRole('tab', { name: 'Charts' }).click();
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('cancelled');
    expect(await page.locator('.progress').innerText()).toMatch(/Cancelled\. Finished examples are kept/);
    const done = (await lab.call('runs.list', { status: 'cancelled' }))[0].examplesDone;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(600);
    await shot('10-cancelled');
    expect(await page.getByRole('status').filter({ hasText: 'It was cancelled' }).innerText()).toMatch(/of 600 examples are stored/);
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('completed');
    await everyChartFull(page, 3);
    expect(await page.locator('.progress').innerText()).toMatch(/600 \/ 600 examples/);
  });

  test('a run stored before the measures existed says "not measured" in the charts and the inspector grid', async () => {
    addUnmeasuredRun(dbPath, { name: 'older run', modelPath: model, modelKey: 'e2e-older:float32:cpu' });
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByLabel('Status').selectOption('');
    await page.getByRole('button', { name: 'Open older run' }).click();
    await expect.poll(() => page.locator('.run-heading h2').innerText()).toMatch(/^older run/);
    await expect.poll(() => page.locator('p.not-measured').innerText()).toMatch(/KL, rank and entropy: not measured/);
    // Two charts (precision@1, surprisal), no measure chart drawn from nothing.
    expect(await page.locator('.main-charts figure.chart').count()).toBe(2);
    await shot('11a-unmeasured-run-charts');
    await page.getByRole('tab', { name: 'Inspector' }).click();
    const grid = page.getByRole('table', { name: /Top-k next tokens/ });
    await expect.poll(() => grid.locator('tbody tr').count()).toBe(3);
    expect(await grid.locator('td .measures').allInnerTexts()).toEqual(['KL, rank, entropy: not measured', 'KL, rank, entropy: not measured', 'KL, rank, entropy: not measured']);
    await shot('11b-unmeasured-run-inspector');
  });

  test('a failed run shows its reason, an interrupted one what happened, and both offer Resume and Delete', async () => {
    addStoppedRun(dbPath, { name: 'broke <b>down</b>', modelPath: model, status: 'failed', error: { code: 'engine_failed', message: 'the session ran out of memory at layer 2' } });
    addStoppedRun(dbPath, { name: 'left behind', modelPath: '/models/elsewhere', status: 'interrupted' });
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByLabel('Status').selectOption('');
    await page.getByRole('button', { name: 'Open broke <b>down</b>' }).click();
    const note = page.getByRole('status').filter({ hasText: 'It failed' });
    expect(await note.innerText()).toMatch(/It failed: the session ran out of memory at layer 2\s+engine_failed/);
    expect(await note.innerText()).toMatch(/0 of 40 examples are stored/);
    expect(await page.locator('.run-heading h2').innerText()).toMatch(/^broke <b>down<\/b>/);
    await shot('11-failed-run');
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open left behind' }).click();
    const interrupted = page.getByRole('status').filter({ hasText: 'It was interrupted' });
    expect(await interrupted.innerText()).toMatch(/load its model first: \/models\/elsewhere/);
    expect(await interrupted.getByRole('button', { name: 'Resume this run' }).isDisabled()).toBe(true);
    await shot('12-interrupted-run');
    page.once('dialog', (d) => void d.accept());
    await interrupted.getByRole('button', { name: 'Delete this run' }).click();
    await expect.poll(async () => (await lab.call('runs.list', {})).map((r) => r.name)).not.toContain('left behind');
    await expect.poll(() => page.getByRole('heading', { name: 'No results yet' }).or(page.locator('.empty')).count()).toBe(1);
  });

  test('API requests without the token are refused, from outside and from the page', async () => {
    const outside = await fetch(new URL('/api/runs.list', server.url), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(outside.status).toBe(401);
    expect(await outside.json()).toMatchObject({ ok: false, error: { path: 'token' } });
    const events = await fetch(new URL('/api/events', server.url));
    expect(events.status).toBe(401);
    const fromPage = await page.evaluate(async () => (await fetch('/api/runs.list', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
    expect(fromPage).toBe(401);
  });

  test('nothing broke on the way: no page errors, no console errors, no CSP violations', () => {
    // The one expected console error is the 401 the previous test provoked on purpose.
    expect(app.problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
  });
});
