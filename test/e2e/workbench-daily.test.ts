/**
 * The workbench as a daily user meets it (issue "The workbench for daily use"): a server that dies
 * or freezes under the page, a refused request, the picture's hover box, chart legends, the runs
 * table's Resume, the compute dtype and the demo's own limit. Each test fails on the code before
 * that issue. Screenshots go to test-output/e2e/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEMO } from '../../src-main/app-paths.ts';
import { CHROMIUM, HAS_CHROMIUM, openApp, SHOTS, SKIP_REASON, type AppSession } from './harness.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'workbench-daily-'));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** `logitscope serve` as a user starts it, in its own process; resolves with the URL it prints. */
function serve(port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['bin/logitscope.js', 'serve', '--port', String(port), '--db', path.join(tmp, 'served.sqlite')], {
    env: { ...process.env, LOGITSCOPE_CACHE_DIR: path.join(tmp, 'cache') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /http:\/\/127\.0\.0\.1:\d+\/\?token=\w+/.exec(out);
      if (m) resolve({ child, url: m[0] });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)));
  });
}

describe.skipIf(!HAS_CHROMIUM)(`the page knows whether its Lab is there${SKIP_REASON}`, () => {
  let browser: Browser;
  let page: Page;
  let server: { child: ChildProcess; url: string };
  const port = 20000 + Math.floor(Math.random() * 20000);
  const banner = () => page.getByRole('alert').filter({ hasText: /Lab/ });

  beforeAll(async () => {
    server = await serve(port);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.url);
    await page.getByText('browser mode · Lab connected').waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    server?.child.kill('SIGKILL');
  });

  test('a frozen server is noticed within seconds; the controls wait; when it answers again the page recovers by itself', async () => {
    server.child.kill('SIGSTOP');
    const stopped = Date.now();
    await banner().getByText('The Lab stopped answering').waitFor({ timeout: 15_000 });
    console.log(`frozen server noticed after ${((Date.now() - stopped) / 1000).toFixed(1)} s`);
    await page.getByText('browser mode · Lab lost').waitFor();
    expect(await page.locator('.layout').getAttribute('inert')).not.toBeNull();
    await page.screenshot({ path: path.join(SHOTS, 'daily-lab-lost.png') });
    server.child.kill('SIGCONT');
    await expect.poll(() => banner().count(), { timeout: 15_000 }).toBe(0);
    await page.getByText('browser mode · Lab connected').waitFor();
    expect(await page.locator('.layout').getAttribute('inert')).toBeNull();
  });

  test('a killed server shows the banner within 5 s; a restarted one is named as new, with where to get its link', async () => {
    server.child.kill('SIGKILL');
    const killed = Date.now();
    await banner().getByText('The Lab stopped answering').waitFor({ timeout: 5000 });
    expect(Date.now() - killed).toBeLessThan(5000);
    server = await serve(port);
    await banner().getByText(/a new one .* open the link it printed/).waitFor({ timeout: 15_000 });
    expect(await page.locator('.layout').getAttribute('inert')).not.toBeNull();
    await page.screenshot({ path: path.join(SHOTS, 'daily-lab-replaced.png') });
  });

  test('a tab without its token says so and leaves no control to press', async () => {
    const bare = await browser.newPage();
    await bare.goto(server.url.replace(/\?token=\w+/, ''));
    await bare.getByRole('alert').getByText(/this page has no access token/).waitFor({ timeout: 15_000 });
    expect(await bare.locator('.layout').getAttribute('inert')).not.toBeNull();
    await bare.close();
  });
});

describe.skipIf(!HAS_CHROMIUM)(`daily use of the workbench${SKIP_REASON}`, () => {
  let app: AppSession;
  let page: Page;
  const shot = (name: string) => app.shot(name);
  const runTitle = () => page.locator('#run-title').innerText();

  beforeAll(async () => {
    app = await openApp({ tmp: path.join(tmp, 'app'), acceptDownloads: true, viewport: { width: 1400, height: 900 } });
    page = app.page;
  });
  afterAll(async () => app?.close());

  test("the demo's limit is the demo's own: the form's Limit stays empty", async () => {
    await page.getByRole('button', { name: 'Run the demo' }).first().click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 120_000 }).toBe('completed');
    expect((await app.lab.call('runs.list', {}))[0].examplesPlanned).toBe(DEMO.limit);
    await page.getByText('Slice and filter').click();
    expect(await page.getByLabel('Limit', { exact: true }).inputValue()).toBe('');
  });

  test('a refused sweep leaves the shown run in place and says why beside Run sweep', async () => {
    const before = await runTitle();
    await page.getByLabel('Dataset files, one path per line').fill(path.join(tmp, 'no-such-file.jsonl'));
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(() => page.getByRole('group', { name: 'Sweep actions' }).getByRole('alert').innerText()).toMatch(/dataset_missing/);
    expect(await runTitle()).toBe(before);
    expect(await page.getByText('No run shown yet').count()).toBe(0);
    await page.getByLabel('Dataset files, one path per line').fill(DEMO.dataFile);
  });

  test('Cancel stops a tuned-lens fit within 2 s; the fit shows determinate progress under a heading that says so; no run is made', async () => {
    const before = (await app.lab.call('runs.list', {})).length;
    const shown = await runTitle();
    await page.getByLabel('affine tuned lens (fitted on a train slice, then cached)').check();
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await page.getByRole('heading', { name: 'Fitting the affine tuned lens' }).waitFor({ timeout: 60_000 });
    const bar = page.getByRole('progressbar', { name: 'Tuned lens fit progress' }).first();
    await expect.poll(async () => Number((await bar.getAttribute('value')) ?? 0), { timeout: 60_000 }).toBeGreaterThan(0);
    expect(Number(await bar.getAttribute('max'))).toBeGreaterThan(Number(await bar.getAttribute('value')));
    await shot('daily-lens-fit');
    const pressed = Date.now();
    await page.locator('#setup').getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.getByText('Cancelled before any example was computed: no run was created.').waitFor({ timeout: 5000 });
    const took = Date.now() - pressed;
    console.log(`lens fit cancelled ${took} ms after Cancel`);
    expect(took).toBeLessThan(2000);
    expect((await app.lab.call('runs.list', {})).length).toBe(before);
    expect(await runTitle()).toBe(shown);
    await page.getByLabel('affine tuned lens (fitted on a train slice, then cached)').uncheck();
  });

  test('a chart point click opens the inspector with its finder set to that technique and layer', async () => {
    await page.getByRole('tab', { name: 'Charts' }).click();
    const figure = page.locator('.main-charts figure.chart').first();
    await figure.locator('canvas').scrollIntoViewIfNeeded();
    // Where the chart drew the logitscope point at layer 2 (read again until the click lands: a
    // redraw or a resize may move it between the read and the click).
    const inspector = page.getByRole('tab', { name: 'Inspector' });
    // Its tooltip names the layer as a layer.
    await expect
      .poll(async () => {
        const spots = JSON.parse((await figure.getAttribute('data-spots'))!) as Record<string, number[][]>;
        const box = (await figure.locator('canvas').boundingBox())!;
        await page.mouse.move(box.x + spots.logitscope[2][0], box.y + spots.logitscope[2][1]);
        return figure.getAttribute('data-tooltip-title');
      }, { timeout: 15_000 })
      .toBe('layer 2');
    await expect
      .poll(async () => {
        // A click that landed switches the tab a moment later: look before clicking again.
        if ((await inspector.getAttribute('aria-selected')) === 'true') return 'true';
        const spots = JSON.parse((await figure.getAttribute('data-spots'))!) as Record<string, number[][]>;
        const box = (await figure.locator('canvas').boundingBox())!;
        const [x, y] = spots.logitscope[2];
        await page.mouse.click(box.x + x, box.y + y);
        return inspector.getAttribute('aria-selected');
      }, { timeout: 15_000 })
      .toBe('true');
    const finder = page.getByRole('form', { name: 'Example filter' });
    await expect.poll(() => finder.getByLabel('Technique').inputValue()).toBe('logitscope');
    expect(await finder.getByLabel('at layer').inputValue()).toBe('2');
    // Compact cells name both surprisals.
    await page.getByRole('checkbox', { name: /compact/i }).check();
    await expect.poll(() => page.locator('.inspector-grid td').first().innerText()).toMatch(/s \d+\.\d\d · s\(paper\) \d+\.\d\d/);
    await page.getByRole('checkbox', { name: /compact/i }).uncheck();
  });

  test('after a Cancel the sidebar says how many examples are stored, as the run does', async () => {
    await page.getByLabel('Run name (optional)').fill('cancelled midway');
    await page.getByRole('button', { name: 'Run sweep' }).click();
    const actions = page.getByRole('group', { name: 'Sweep actions' });
    await expect.poll(() => actions.innerText(), { timeout: 60_000 }).toMatch(/examples\/s/);
    await actions.getByRole('button', { name: 'Cancel', exact: true }).click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 60_000 }).toBe('cancelled');
    const run = (await app.lab.call('runs.list', {})).find((r) => r.name === 'cancelled midway')!;
    await expect.poll(() => actions.innerText()).toContain(`${run.examplesDone} / ${run.examplesPlanned} examples stored`);
    await page.getByLabel('Run name (optional)').fill('');
  });

  test('a new tab opens on the most recent run', async () => {
    const fresh = await page.context().newPage();
    await fresh.goto(app.server.url);
    const latest = (await app.lab.call('runs.list', {}))[0];
    await expect.poll(() => fresh.locator('#run-title').innerText().catch(() => ''), { timeout: 30_000 }).toMatch(new RegExp(`^${latest.name ?? `run ${latest.id.slice(0, 8)}`}`));
    await fresh.close();
  });

  test('the runs table resumes a cancelled run once its model is loaded, and exports Parquet', async () => {
    const { runId } = await app.lab.call('sweep.start', { files: [DEMO.dataFile], preset: 'logitscope', overrides: { limit: 400 }, techniques: [{ id: 'logit_lens' }], layers: null, batchSize: 2, name: 'to resume' });
    await app.lab.call('sweep.cancel', { runId });
    await app.lab.settled(runId);
    await page.getByRole('tab', { name: 'Runs' }).click();
    const resume = page.getByRole('button', { name: 'Resume to resume' });
    await expect.poll(() => resume.isEnabled()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export to resume as Parquet' }).click()]);
    expect(fs.readFileSync((await download.path())!).subarray(0, 4).toString()).toBe('PAR1');
    expect(download.suggestedFilename()).toBe(`to-resume-${runId.slice(0, 8)}.parquet`);
    // Token text beside every id, as the grid shows it (a leading space as ␣).
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export to resume as CSV' }).click()]);
    const [header, first] = fs.readFileSync((await csv.path())!, 'utf8').split('\r\n');
    expect(header.split(',')).toEqual(expect.arrayContaining(['reference_top1_text', 'top1_text', 'top_k_texts']));
    const stored = (await app.lab.call('runs.example', { runId, ordinal: 0 })).cells[0];
    expect(first).toContain(stored.topK[0].text.replace(/^ /, '␣'));
    await resume.click();
    await expect.poll(() => page.locator('.run-heading .status').innerText(), { timeout: 120_000 }).toBe('completed');
    expect(await runTitle()).toMatch(/^to resume/);
  });

  test('float16 compute can be chosen where the model loads', async () => {
    await page.getByLabel('Compute dtype').selectOption('float16');
    await page.getByLabel('Checkpoint directory').fill(DEMO.modelDir);
    await page.getByRole('button', { name: 'Load model' }).click();
    const model = page.getByRole('region', { name: 'Model' });
    await expect.poll(async () => (await model.getByRole('alert').innerText()) + (await model.getByRole('definition').filter({ hasText: '/ float16' }).count()), { timeout: 60_000 }).toBe('1');
    expect((await app.lab.call('model.current', {}))!.computeDtype).toBe('float16');
  });

  test("after the Extract view's chart, every results chart still has no chart.js legend of its own (one legend per chart)", async () => {
    await page.getByRole('tab', { name: 'Extract' }).click();
    await page.getByRole('textbox', { name: 'Prompt' }).fill('The cat saw the dog. The cat');
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await page.locator('figure.mini-chart').first().waitFor({ timeout: 60_000 });
    await page.getByRole('tab', { name: 'Charts' }).click();
    await page.locator('.main-charts figure.chart').first().waitFor();
    await expect.poll(() => page.$$eval('.main-charts figure.chart', (figures) => figures.map((f) => (f as HTMLElement).dataset.legendItems))).toEqual(['0', '0', '0']); // precision@1, surprisal and the per-row measure
  });

  test("the picture's hover box sits beside its cell, inside the window, and every panel scrolls as one", async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.getByRole('tab', { name: 'Extract' }).click();
    await page.getByRole('textbox', { name: 'Prompt' }).fill('One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty.');
    await page.getByText('every position (the logit-lens picture)').click();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    const scroller = page.locator('.lens-panels-list');
    await scroller.waitFor({ timeout: 60_000 });
    // One scroll container for all panels, wider than the window: scrolling it moves every panel alike.
    expect(await scroller.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
    await scroller.evaluate((el) => (el.scrollLeft = 400));
    const xs = await page.$$eval('table.lens', (tables) => tables.map((t) => Math.round(t.querySelector('tbody tr td:nth-child(8)')!.getBoundingClientRect().x)));
    expect(new Set(xs).size).toBe(1);

    for (const id of ['#lens-logitscope-5-12', '#lens-logit_lens-0-3']) {
      const cell = page.locator(id);
      await cell.hover();
      const hover = page.locator('.lens-hover.floating');
      await hover.waitFor();
      const c = (await cell.boundingBox())!;
      const b = (await hover.boundingBox())!;
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(1024);
      expect(b.y + b.height).toBeLessThanOrEqual(700);
      const gapX = Math.max(0, b.x - (c.x + c.width), c.x - (b.x + b.width));
      const gapY = Math.max(0, b.y - (c.y + c.height), c.y - (b.y + b.height));
      expect(Math.hypot(gapX, gapY)).toBeLessThanOrEqual(40);
    }
    await shot('daily-lens-hover-1024');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('.lens-hover.floating').count()).toBe(0);
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  test("the picture's SVG wraps a long title inside the figure", async () => {
    await page.getByRole('textbox', { name: 'Prompt' }).fill('The cat');
    for (let i = 1; i <= 3; i++) {
      await page.getByRole('button', { name: 'Add target prompt' }).click();
      await page.getByRole('textbox', { name: `Target prompt ${i}` }).fill(`a rather long target prompt number ${i} -> ?`);
    }
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await page.locator('table.lens').nth(5).waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Save picture as SVG' }).click()]);
    const svg = fs.readFileSync((await download.path())!, 'utf8');
    // Drawn by the browser: every text of the figure ends inside its width.
    const viewer = await page.context().newPage();
    await viewer.setContent(svg);
    const { width, overflow, titleLines } = await viewer.evaluate(() => {
      const root = document.querySelector('svg')!;
      const w = Number(root.getAttribute('width'));
      const texts = [...root.querySelectorAll('text')];
      return {
        width: w,
        overflow: texts.filter((t) => t.getBBox().x + t.getBBox().width > w).map((t) => t.textContent),
        titleLines: texts.filter((t) => t.getAttribute('font-size') === '18').length,
      };
    });
    await viewer.close();
    expect(width).toBe(860);
    expect(titleLines).toBeGreaterThan(1);
    expect(overflow).toEqual([]);
    for (let i = 3; i >= 1; i--) await page.getByRole('button', { name: `Remove target prompt ${i}` }).click();
  });

  test('the log-probability switch colours by ln p on the fixed scale from ln(1/dVocab) to 0', async () => {
    await page.getByRole('button', { name: 'Log-probability' }).click();
    await expect.poll(() => page.locator('.lens-legend').innerText()).toMatch(/log-probability of the top-1 token, nats[\s\S]*−10\.83[\s\S]*0/);
    const label = (await page.locator('#lens-logit_lens-5-0').getAttribute('aria-label'))!;
    const lp = Number(/ln p\(top-1\) = (-?\d+\.\d+) nats/.exec(label)![1]);
    expect(lp).toBeLessThanOrEqual(0);
    const step = Math.max(0, Math.min(9, Math.floor((1 + lp / Math.log(50400)) * 10)));
    expect(await page.locator('#lens-logit_lens-5-0').getAttribute('class')).toContain(`lens-c${step}`);
  });

  test("at 1024×700 the runs table shows name, status, model, examples and actions, none covering another", async () => {
    await page.setViewportSize({ width: 1024, height: 700 });
    await page.getByRole('tab', { name: 'Runs' }).click();
    const table = page.locator('table.runs');
    await table.waitFor();
    const boxes = await table.locator('thead th').evaluateAll((ths) =>
      ths.filter((th) => (th as HTMLElement).offsetParent !== null).map((th) => ({ text: (th as HTMLElement).innerText.replace(/[▲▼]/g, '').trim(), ...JSON.parse(JSON.stringify(th.getBoundingClientRect())) })),
    );
    expect(boxes.map((b) => b.text)).toEqual(expect.arrayContaining(['Run', 'Status', 'Model', 'Examples', 'Actions']));
    for (let i = 1; i < boxes.length; i++) expect(boxes[i].left).toBeGreaterThanOrEqual(boxes[i - 1].right - 1);
    const scroll = await table.evaluate((t) => ({ width: t.parentElement!.scrollWidth, visible: t.parentElement!.clientWidth }));
    expect(scroll.width).toBeLessThanOrEqual(scroll.visible);
    await shot('daily-runs-1024');
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  test('at 1920×1080 with a model loaded, Run sweep, Cancel and Resume stay in view while the set-up column scrolls', async () => {
    await page.setViewportSize({ width: 1920, height: 1080 });
    const aside = page.locator('aside#setup');
    for (const top of [0, 100_000]) {
      await aside.evaluate((el, t) => (el.scrollTop = t), top);
      for (const name of ['Run sweep', 'Cancel', 'Resume']) {
        const button = page.locator('#setup').getByRole('button', { name, exact: true });
        await expect.poll(async () => { const b = (await button.boundingBox())!; return b.y >= 0 && b.y + b.height <= 1080; }, { message: `${name} at scrollTop ${top}` }).toBe(true);
      }
    }
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  test('"Copy as command" gives the logitscope sweep that computes the shown run again', async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.getByRole('tab', { name: 'Charts' }).click();
    await page.getByRole('button', { name: 'Copy as command' }).click();
    await page.getByText('Copied: it computes this run again').waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    const shown = (await app.lab.call('runs.list', {}))[0];
    expect(copied).toBe((await app.lab.call('runs.get', { runId: shown.id })).command);
    expect(copied).toMatch(/^npx logitscope sweep --model \S+ --data /);
  });

  test('nothing broke on the way: no page errors, console errors or CSP violations', () => {
    expect(app.problems).toEqual([]);
  });
});
