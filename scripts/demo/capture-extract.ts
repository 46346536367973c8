/**
 * The README's picture of the Extract tab: loads the built-in demo model in the real app (browser
 * mode, headless Chromium), extracts at one position of a typed prompt and saves a screenshot.
 *
 *   npx tsx scripts/demo/capture-extract.ts        (needs /usr/bin/chromium: apt-get install -y chromium)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { DEMO } from '../../src-main/app-paths.ts';
import { Lab } from '../../src-main/api/lab.ts';
import { startServer } from '../../src-main/serve.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-extract-'));
const rendererDir = path.join(tmp, 'renderer');
await build({ configFile: path.resolve('vite.config.ts'), build: { outDir: rendererDir, emptyOutDir: true }, logLevel: 'warn' });
const lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
const server = await startServer({ lab, rendererDir });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 1100 } })).newPage();
  await page.goto(server.url);
  await page.getByLabel('Checkpoint directory').fill(DEMO.modelDir);
  await page.getByRole('button', { name: 'Load model' }).click();
  await page.getByLabel('Loaded model').waitFor({ timeout: 120_000 });
  await page.getByRole('tab', { name: 'Extract' }).click();
  await page.getByLabel('Prompt', { exact: true }).fill('The President of the United States said that the');
  await page.locator('[role=option]').nth(8).waitFor();
  await page.getByRole('button', { name: 'Run extraction' }).click();
  await page.locator('figure.mini-chart').waitFor({ timeout: 60_000 });
  await page.locator('main').screenshot({ path: 'docs/demo-extract.png' });
  console.log('wrote docs/demo-extract.png');
} finally {
  await browser.close();
  await server.close();
  await lab.close();
}
