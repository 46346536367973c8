/**
 * The README's pictures of the Extract tab, taken through the real app (browser mode, headless
 * Chromium) on the built-in demo model: one position of a typed prompt (docs/demo-extract.png),
 * then every position of a longer one, the logit-lens picture, with a token pinned
 * (docs/demo-lens.png).
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

  await page.getByLabel('Prompt', { exact: true }).fill('The President of the United States said that the President of the United');
  await page.locator('[role=option]').nth(12).waitFor();
  await page.getByLabel('every position (the logit-lens picture)').check();
  await page.getByRole('button', { name: 'Run extraction' }).click();
  await page.locator('table.lens').first().waitFor({ timeout: 60_000 });
  // Two panels side by side are what the picture is for: the lens and the logitscope.
  await page.getByRole('group', { name: 'Panels' }).getByLabel('token-identity patchscope').uncheck();
  await page.getByLabel('Pin a token').fill(' States');
  await page.getByRole('button', { name: 'Pin', exact: true }).click();
  await page.getByRole('button', { name: 'Probability', exact: true }).click();
  await page.locator('#lens-picture figure.mini-chart').waitFor();
  const tokens = await page.locator('table.lens').first().locator('thead th').count();
  await page.locator(`#lens-logit_lens-3-${tokens - 2}`).hover();
  await page.locator('#lens-picture').screenshot({ path: 'docs/demo-lens.png' });
  console.log('wrote docs/demo-lens.png');
} finally {
  await app.close();
}
