/**
 * The README's picture: runs the built-in demo sweep in the real app (browser mode, headless
 * Chromium), then saves both charts with the app's own "Save … chart as PNG" buttons into docs/.
 *
 *   npx tsx scripts/demo/capture-charts.ts        (needs /usr/bin/chromium: apt-get install -y chromium)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { Lab } from '../../src-main/api/lab.ts';
import { startServer } from '../../src-main/serve.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-charts-'));
const rendererDir = path.join(tmp, 'renderer');
await build({ configFile: path.resolve('vite.config.ts'), build: { outDir: rendererDir, emptyOutDir: true }, logLevel: 'warn' });
const lab = await Lab.open({ dbPath: path.join(tmp, 'results.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
const server = await startServer({ lab, rendererDir });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true })).newPage();
  await page.goto(server.url);
  await page.getByRole('button', { name: 'Run the demo' }).first().click();
  await page.getByText('completed', { exact: true }).first().waitFor({ timeout: 300_000 });
  fs.mkdirSync('docs', { recursive: true });
  for (const [button, file] of [
    ['Save precision chart as PNG', 'docs/demo-precision.png'],
    ['Save surprisal chart as PNG', 'docs/demo-surprisal.png'],
  ] as const) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
    fs.copyFileSync((await download.path())!, file);
    console.log(`wrote ${file}`);
  }
} finally {
  await browser.close();
  await server.close();
  await lab.close();
}
