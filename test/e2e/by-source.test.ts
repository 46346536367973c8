/**
 * "By source" in headless Chromium against `serve` and a real Lab (tiny checkpoint, one finished
 * sweep over records from three sources, some naming none): a line and a legend entry per source,
 * each with its n, for the technique picked. Screenshots go to test-output/e2e/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from '../../src-main/api/lab.ts';
import { startServer, type RunningServer } from '../../src-main/serve.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SHOTS = path.resolve('test-output/e2e');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-by-source-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');
/** 6 Wiki, 4 Code, 2 without a source: the order by n is fixed. */
const SOURCES = ['Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Code', 'Wiki', 'Wiki', undefined, undefined];

describe.skipIf(!fs.existsSync(CHROMIUM))('the Charts tab splits a run by data source, in headless Chromium', () => {
  let lab: Lab;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 9 });
    const lines = SOURCES.map((s, i) => JSON.stringify({ text: `Record ${i} is about ${['a harbour', 'the hills', 'a library'][i % 3]} and more.`, ...(s && { meta: { pile_set_name: s } }) }));
    fs.writeFileSync(data, lines.join('\n'));
    const rendererDir = path.join(tmp, 'renderer');
    await build({ configFile: path.resolve('vite.config.ts'), build: { outDir: rendererDir, emptyOutDir: true }, logLevel: 'warn' });
    lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    await lab.call('model.load', { dir: model });
    const { runId } = await lab.call('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, k: 3, name: 'source sweep' });
    await lab.settled(runId);
    server = await startServer({ lab, rendererDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
    await page.goto(server.url);
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Open source sweep' }).click();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await lab?.close();
  });

  test('opening "By source" draws one line per source, with n in the legend, for the technique picked', async () => {
    await page.locator('summary', { hasText: 'By source' }).click();
    const precision = page.getByRole('figure', { name: /precision@1 per layer by source: logit lens/i });
    await expect.poll(() => precision.getByRole('list', { name: /Legend/ }).getByRole('button').allInnerTexts()).toEqual(['Wiki (n=6)', 'Code (n=4)', '(none) (n=2)']);
    await expect.poll(async () => JSON.parse((await precision.getAttribute('data-points')) ?? '{}')).toEqual({ source_0: 3, source_1: 3, source_2: 3 });
    const surprisal = page.getByRole('figure', { name: /per layer by source: logit lens/i }).nth(1);
    expect(await surprisal.getByRole('list', { name: /Legend/ }).getByRole('button').count()).toBe(3);
    await page.locator('details.by-source').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'by-source.png'), fullPage: true });

    await page.getByRole('combobox', { name: 'Technique' }).selectOption({ label: 'logitscope' });
    await expect.poll(() => page.getByRole('figure', { name: /precision@1 per layer by source: logitscope/i }).count()).toBe(1);
    expect(problems).toEqual([]);
  });
});
