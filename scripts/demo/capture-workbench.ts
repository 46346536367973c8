/**
 * The README's pictures of the workbench views, taken through the real app (browser mode, headless
 * Chromium) on the built-in demo model: the same 40 examples swept in float32 and in float16, the
 * second overlaid on the first with the difference view, paired over the shared examples
 * (docs/demo-compare.png), and the inspector's finder as a heatmap of "logitscope wrong at layer
 * 2" (docs/demo-inspector.png). float16 on the CPU is slow (onnxruntime's CPU fp16 Gemm), so the
 * script takes a few minutes.
 *
 *   npx tsx scripts/demo/capture-workbench.ts     (needs /usr/bin/chromium: apt-get install -y chromium)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openApp } from '../../test/e2e/harness.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-workbench-'));
const app = await openApp({
  tmp,
  viewport: { width: 1400, height: 1000 },
  prepare: async (lab) => {
    const { demo } = await lab.call('app.info', {});
    if (!demo) throw new Error('this build has no built-in demo model');
    const techniques = [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }] as const;
    for (const dtype of ['float32', 'float16'] as const) {
      await lab.call('model.load', { dir: demo.modelDir, dtype });
      const { runId } = await lab.call('sweep.start', { files: [demo.dataFile], preset: 'logitscope', overrides: { limit: 40 }, techniques: [...techniques], layers: null, k: 10, name: `demo, ${dtype}` });
      await lab.settled(runId);
    }
  },
});
try {
  const { page } = app;
  fs.mkdirSync('docs', { recursive: true });
  // Hide the set-up panel: the pictures are of the results.
  await page.getByRole('button', { name: 'Hide the set-up panel' }).click();
  await page.getByRole('tab', { name: 'Runs' }).click();
  await page.getByRole('button', { name: 'Open demo, float32' }).click();
  await page.getByRole('tab', { name: 'Runs' }).click();
  await page.getByRole('button', { name: 'Overlay demo, float16' }).click();
  await page.getByRole('tab', { name: 'Charts' }).click();
  const compare = page.locator('section', { has: page.getByRole('heading', { name: /Difference: B − A per layer/ }) });
  await compare.locator('canvas').first().waitFor();
  await page.waitForTimeout(1000); // the charts' animation
  await compare.screenshot({ path: 'docs/demo-compare.png' });
  console.log('wrote docs/demo-compare.png');

  await page.getByRole('tab', { name: 'Inspector' }).click();
  await page.getByRole('combobox', { name: 'Technique' }).first().selectOption({ label: 'logitscope' });
  await page.getByRole('combobox', { name: 'Result' }).selectOption({ label: 'wrong' });
  await page.getByRole('combobox', { name: 'at layer' }).selectOption('2');
  await page.getByRole('button', { name: 'Find examples' }).click();
  await page.getByRole('button', { name: 'Heatmap' }).click();
  await page.waitForTimeout(500);
  await page.locator('.finder').screenshot({ path: 'docs/demo-inspector.png' });
  console.log('wrote docs/demo-inspector.png');
} finally {
  await app.close();
}
