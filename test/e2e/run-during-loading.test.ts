/**
 * A model (re)load that overlaps a sweep used to dispose the engine under it and abort the whole
 * process. Here, in headless Chromium against `serve` and a real Lab: the page loads a model and,
 * while it says "Loading…", Run sweep is disabled with its reason and a second tab starts a sweep
 * through the same API; then the page tries to load another model while that sweep runs. The
 * server must stay alive and every run must end in a final state.
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

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-loading-'));
const modelA = path.join(tmp, 'model-a');
const modelB = path.join(tmp, 'model-b');
const data = path.join(tmp, 'lines.jsonl');

describe.skipIf(!HAS_CHROMIUM)(`Run during Loading, in the browser${SKIP_REASON}`, () => {
  let app: AppSession;
  let lab: Lab;
  let server: RunningServer;
  let page: Page;

  /** What another tab of the app would send: the same API, with the same token. */
  const otherTab = (name: string, payload: unknown) =>
    page.evaluate(
      async ([n, body, token]) => (await fetch(`/api/${n}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).json(),
      [name, payload, server.token] as const,
    );

  beforeAll(async () => {
    writeTinyGptj({ dir: modelA, format: 'safetensors', seed: 31 });
    writeTinyGptj({ dir: modelB, format: 'safetensors', seed: 32 });
    fs.writeFileSync(data, Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: `Line ${i} tells of ${['rain', 'sun', 'snow'][i % 3]} over the hills.` })).join('\n'));
    app = await openApp({ tmp });
    ({ lab, server, page } = app);
  });

  afterAll(async () => app?.close());

  test('a sweep started while the model loads waits for it; a reload during the sweep is refused; the server lives and every run ends', async () => {
    // The page's load request is held on its way to the server until the page has been checked
    // while it waits: a tiny model loads faster than a poll could catch the "Loading…" state.
    let releaseLoad!: () => void;
    const loadHeld = new Promise<void>((resolve) => (releaseLoad = resolve));
    let loadSent = false;
    await page.route('**/api/model.load', async (route) => {
      loadSent = true;
      await loadHeld;
      await route.continue();
    });
    await page.getByLabel('Checkpoint directory').fill(modelA);
    await page.getByRole('button', { name: 'Load model' }).click();
    await expect.poll(() => loadSent, { timeout: 15_000 }).toBe(true);
    // While loading, Run sweep cannot be clicked, and the page says why.
    await expect.poll(() => page.locator('#run-blocker').innerText(), { timeout: 15_000 }).toMatch(/A model is loading/);
    expect(await page.getByRole('button', { name: 'Run sweep' }).isDisabled()).toBe(true);
    releaseLoad(); // and later loads pass straight through
    // Another tab starts a sweep as the load goes through, by the same API: it runs on model A (waiting for the load if it is still going).
    // The sweep holds after its first batch until it is cancelled (LOGITSCOPE_TEST_HOLD), so it is surely running when the page reloads.
    process.env.LOGITSCOPE_TEST_HOLD = '4';
    const started = (await otherTab('sweep.start', { files: [data], preset: 'logitscope', techniques: [{ id: 'logit_lens' }, { id: 'logitscope' }], layers: null, batchSize: 4, strategy: 'naive' })) as {
      ok: boolean;
      result: { runId: string };
    };
    expect(started.ok).toBe(true);
    const { runId } = started.result;
    await expect.poll(() => fs.existsSync(`${lab.dbFile}.held`), { timeout: 30_000 }).toBe(true);
    delete process.env.LOGITSCOPE_TEST_HOLD;

    // Loading another model while that sweep runs is refused with a reason, not a crash.
    await page.getByLabel('Checkpoint directory').fill(modelB);
    await page.getByRole('button', { name: 'Load model' }).click();
    await expect.poll(async () => (await page.getByRole('alert').allInnerTexts()).join(' '), { timeout: 30_000 }).toMatch(/sweep is running on the loaded model/);
    await page.screenshot({ path: path.join(SHOTS, 'run-during-loading.png'), fullPage: true });

    // Cancelled, the sweep keeps what it finished; then the other model loads.
    expect(await otherTab('sweep.cancel', { runId })).toEqual({ ok: true, result: { cancelled: true } });
    await lab.settled(runId);
    const run = (await otherTab('runs.get', { runId })) as { ok: boolean; result: { status: string; modelPath: string; examplesDone: number } };
    expect(run.result).toMatchObject({ status: 'cancelled', modelPath: fs.realpathSync(modelA) });
    expect(run.result.examplesDone).toBe(4);
    await page.getByRole('button', { name: 'Load model' }).click();
    await expect.poll(() => page.getByLabel('Loaded model').innerText(), { timeout: 30_000 }).toContain(path.basename(modelB));
    // The server still answers, and every run it knows is in a final state.
    const runs = (await otherTab('runs.list', {})) as { ok: boolean; result: { status: string }[] };
    expect(runs.ok).toBe(true);
    for (const r of runs.result) expect(['completed', 'cancelled', 'failed']).toContain(r.status);
    expect(app.problems).toEqual([]);
  });
});
