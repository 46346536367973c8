/**
 * The README's picture of the Extract tab: loads the built-in demo model in the real app (browser
 * mode, headless Chromium), extracts at one position of a typed prompt and saves a screenshot.
 *
 *   npx tsx scripts/demo/capture-extract.ts        (needs /usr/bin/chromium: apt-get install -y chromium)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEMO } from '../../src-main/app-paths.ts';
import { openApp } from '../../test/e2e/harness.ts';

const app = await openApp({ tmp: fs.mkdtempSync(path.join(os.tmpdir(), 'demo-extract-')), viewport: { width: 1440, height: 1100 } });
try {
  const { page } = app;
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
  await app.close();
}
