/**
 * The README's picture: runs the built-in demo sweep in the real app (browser mode, headless
 * Chromium), then saves both charts with the app's own "Save … chart as PNG" buttons into docs/.
 *
 *   npx tsx scripts/demo/capture-charts.ts        (needs /usr/bin/chromium: apt-get install -y chromium)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openApp } from '../../test/e2e/harness.ts';

const app = await openApp({ tmp: fs.mkdtempSync(path.join(os.tmpdir(), 'demo-charts-')), acceptDownloads: true });
try {
  const { page } = app;
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
  await app.close();
}
