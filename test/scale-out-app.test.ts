/**
 * The Sweep panel's Devices field, in headless Chromium against `serve` and a real Lab (tiny
 * checkpoint): a sweep over `cpu,cpu` runs two shard processes, the page follows the merged run to
 * its end, and the run equals a single-process sweep of the same settings.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Lab } from '../src-main/api/lab.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './e2e/harness.ts';
import { writeTinyGptj } from './fixtures/checkpoint-writer.ts';
import { differences } from './scale-out-compare.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-out-app-'));
const model = path.join(tmp, 'tiny-gptj');
const data = path.join(tmp, 'lines.jsonl');
const LIMIT = 10;

describe.skipIf(!HAS_CHROMIUM)(`the Sweep panel's Devices field, in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 21 });
    const places = ['a harbour', 'the hills', 'a library', 'the old mill', 'a river'];
    fs.writeFileSync(data, Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `Record ${i} tells of ${places[i % places.length]} at night.` })).join('\n'));
    app = await openApp({ tmp, prepare: async (l) => void (await l.call('model.load', { dir: model })) });
  }, 180_000);
  afterAll(async () => {
    await app?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a sweep over cpu,cpu is followed to its end and equals the single-process sweep', async () => {
    const { page } = app;
    await page.getByLabel('Dataset files, one path per line').fill(data);
    await page.getByText('Slice and filter').click();
    await page.getByLabel('Limit', { exact: true }).fill(String(LIMIT));
    await page.getByLabel(/^Devices/).fill('cpu, cpu');
    expect(await page.locator('.hint', { hasText: 'Runs 2 shards' }).innerText()).toContain('one process per device (cpu, cpu)');
    await page.getByRole('button', { name: 'Run sweep' }).click();
    await expect.poll(() => page.locator('.run-heading .status').innerText().catch(() => ''), { timeout: 120_000 }).toBe('completed');
    await app.shot('scale-out-devices');

    const [run, ...others] = await app.lab.call('runs.list', {});
    expect(others).toEqual([]);
    expect(run).toMatchObject({ status: 'completed', examplesPlanned: LIMIT, examplesDone: LIMIT });
    const merged = JSON.parse((await app.lab.call('runs.export', { runId: run.id, format: 'json' })).content!);
    expect(merged.dataset.shard).toBeUndefined();

    const single = await Lab.open({ dbPath: path.join(tmp, 'single.sqlite'), cacheRoot: path.join(tmp, 'graphs') });
    try {
      await single.call('model.load', { dir: model });
      const spec = await app.lab.call('runs.get', { runId: run.id });
      const { runId } = await single.call('sweep.start', {
        files: [data], preset: 'logitscope', overrides: { limit: LIMIT, positionSeed: spec.protocol.positionSeed }, techniques: [{ id: 'logit_lens' }, { id: 'patchscope' }, { id: 'logitscope' }], layers: null, k: 10, // the form's default top-k
      });
      await single.settled(runId);
      const reference = JSON.parse((await single.call('runs.export', { runId, format: 'json' })).content!);
      const strip = (r: { run: Record<string, unknown> }) => ({ ...r, run: { ...r.run, id: 0, created_at: 0, updated_at: 0, timings: 0, name: 0 } });
      expect(differences(strip(merged), strip(reference))).toEqual([]);
    } finally {
      await single.close();
    }
    expect(app.problems).toEqual([]);
  }, 180_000);
});
