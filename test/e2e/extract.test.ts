/**
 * The Extract tab in headless Chromium against `serve` and a real Lab (tiny 3-layer checkpoint):
 * a typed prompt, a clicked position, the layer × technique grid, custom target prompts, a followed
 * token, keyboard-only use, the too-long message, "save as example" into Runs and its export, and
 * the view's numbers against `logitscope extract --json` on the same checkpoint.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ExtractView } from '../../src-main/api/contract.ts';
import type { RunningServer } from '../../src-main/serve.ts';
import { writeTinyGptj } from '../fixtures/checkpoint-writer.ts';
import { HAS_CHROMIUM, openApp, SKIP_REASON, type AppSession } from './harness.ts';

const LAYERS = 3;
const PROMPT = 'The Eiffel Tower is in';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-extract-'));
const model = path.join(tmp, 'tiny-gptj');

describe.skipIf(!HAS_CHROMIUM)(`the Extract tab in headless Chromium${SKIP_REASON}`, () => {
  let app: AppSession;
  let server: RunningServer;
  let page: Page;
  const shot = (name: string) => app.shot(name);
  const grid = () => page.getByRole('table', { name: /Top-k next tokens/ });
  const tokens = () => page.getByRole('listbox', { name: 'Prompt tokens: the position to read' }).getByRole('option');
  /** The reply the page got to its next `extract` request, as the view shows it. */
  const nextReply = () => page.waitForResponse((r) => r.url().endsWith('/api/extract')).then(async (r) => (await r.json()).result as ExtractView);

  beforeAll(async () => {
    writeTinyGptj({ dir: model, format: 'safetensors', seed: 5 });
    app = await openApp({ tmp, acceptDownloads: true, prepare: async (l) => void (await l.call('model.load', { dir: model })) });
    ({ server, page } = app);
    await page.getByRole('tab', { name: 'Extract' }).click();
  });

  afterAll(async () => app?.close());

  test('a typed prompt shows as tokens with their ids; a clicked token is the position; Run shows the grid and the chart', async () => {
    await page.getByLabel('Prompt', { exact: true }).fill(PROMPT);
    await expect.poll(() => tokens().count()).toBeGreaterThan(4);
    // The last token is chosen until another is clicked.
    expect(await tokens().last().getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('[role=option][aria-selected=true]').count()).toBe(1);
    expect(await tokens().nth(0).getAttribute('title')).toMatch(/^position 0 · id \d+$/);
    await tokens().nth(2).click();
    expect(await tokens().nth(2).getAttribute('aria-selected')).toBe('true');
    const reply = nextReply();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    expect((await reply).position).toBe(2);
    await expect.poll(() => grid().locator('tbody tr').count()).toBe(LAYERS);
    expect(await grid().locator('thead th').count()).toBe(1 + 3);
    expect(await grid().locator('td').first().innerText()).toMatch(/s \d+\.\d\d nats · s\(paper\) \d+\.\d\d nats/);
    // At the last layer the logit lens reads the model's own output: ✓.
    expect(await page.locator(`#extract-cell-logit_lens-${LAYERS - 1}`).getAttribute('class')).toMatch(/hit/);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, number[]>;
    expect(Object.keys(values)).toEqual(['logit_lens', 'patchscope', 'logitscope']);
    expect(values.logit_lens).toHaveLength(LAYERS);
    await shot('extract-01-grid');
  });

  test('a custom target prompt with a fixed target layer runs as a fourth technique; an empty one is refused beside it', async () => {
    await page.getByRole('button', { name: 'Add target prompt' }).click();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await expect.poll(() => page.getByRole('group', { name: 'Custom target prompts (patchscopes)' }).getByRole('alert').innerText()).toMatch(/Target prompt 1 is empty/);
    await page.getByLabel('Target prompt 1', { exact: true }).fill('hello->there;?->');
    await page.getByLabel('Target layer').selectOption('fixed');
    await page.getByLabel('Target prompt 1: fixed target layer').fill('1');
    const reply = nextReply();
    await page.getByRole('button', { name: 'Run extraction' }).click();
    expect((await reply).techniques.at(-1)).toEqual({ id: 'custom_1', prompt: 'hello->there;?->', targetLayer: 1 });
    await expect.poll(() => grid().locator('thead th').count()).toBe(1 + 4);
    expect(await grid().locator('thead').innerText()).toContain('custom 1: "hello->there;?->"');
  });

  test('clicking a top-k token follows it: the chart plots its probability, and a gap where it is not in the top-k', async () => {
    const pick = page.locator('#extract-cell-logitscope-0').getByRole('button').nth(1);
    const name = (await pick.getAttribute('aria-label'))!;
    const id = Number(/\(id (\d+)\)$/.exec(name)![1]);
    const reply = nextReply();
    await pick.click();
    const view = await reply;
    expect(view.follow?.id).toBe(id);
    await expect.poll(() => page.locator('figure.mini-chart figcaption').innerText()).toMatch(/followed token/);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, (number | null)[]>;
    const cell = view.cells.find((c) => c.technique === 'logitscope' && c.layer === 0)!;
    expect(values.logitscope[0]).toBe(cell.topK[1].prob);
    // Every value is the cell's own top-k probability of that token, or null where it is absent.
    for (const c of view.cells) expect(c.followProb).toBe(c.topK.find((t) => t.id === id)?.prob ?? null);
    expect(await page.getByRole('button', { name, pressed: true }).count()).toBeGreaterThan(0);
    await shot('extract-02-follow');
    await page.getByRole('button', { name: 'Stop following' }).click();
    await expect.poll(() => page.locator('figure.mini-chart figcaption').innerText()).toBe("p(model's top-1) per layer");
  });

  test('keyboard only: arrow keys move the position along the tokens and Enter runs', async () => {
    await page.getByRole('button', { name: 'Remove target prompt 1' }).click();
    await tokens().nth(2).focus();
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('prompt-token-1');
    expect(await tokens().nth(1).getAttribute('aria-selected')).toBe('true');
    const reply = nextReply();
    await page.keyboard.press('Enter');
    expect((await reply).position).toBe(1);
    await expect.poll(() => page.locator('#extract-result-heading').innerText()).toMatch(/^Position 1:/);
  });

  test('the view shows the numbers `logitscope extract --json` gives for the same prompt and position', async () => {
    const out = path.join(tmp, 'cli.json');
    const env = { ...process.env, LOGITSCOPE_DB: path.join(tmp, 'cli.sqlite'), LOGITSCOPE_CACHE_DIR: path.join(tmp, 'graphs') };
    await promisify(execFile)(process.execPath, ['bin/logitscope.js', 'extract', '--model', model, '--text', PROMPT, '--position', '1', '--top-k', '10', '--json', out], { env });
    const cli = JSON.parse(fs.readFileSync(out, 'utf8')).examples[0] as {
      position: number; reference_top1: number; layers: { technique: string; layer: number; top1: number; surprisal: number; top_k: { ids: number[]; probs: number[] } }[];
    };
    expect(cli.position).toBe(1);
    const values = JSON.parse((await page.locator('figure.mini-chart').getAttribute('data-values'))!) as Record<string, number[]>;
    for (const r of cli.layers) {
      // The grid's first token button names the top-1 id; the chart holds p(model's top-1).
      const top1 = await page.locator(`#extract-cell-${r.technique}-${r.layer}`).getByRole('button').first().getAttribute('aria-label');
      expect(Number(/\(id (\d+)\)$/.exec(top1!)![1])).toBe(r.top1);
      expect(Math.abs(values[r.technique][r.layer] - Math.exp(-r.surprisal))).toBeLessThan(1e-6);
    }
    const shown: ExtractView = await page.evaluate(async (token) => (await (await fetch('/api/extract', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ text: 'The Eiffel Tower is in', position: 1, k: 10, bos: false }) })).json()).result, server.token);
    expect(shown.reference.id).toBe(cli.reference_top1);
    for (const r of cli.layers) {
      const cell = shown.cells.find((c) => c.technique === r.technique && c.layer === r.layer)!;
      cell.topK.forEach((t, i) => {
        expect(t.id).toBe(r.top_k.ids[i]);
        expect(Math.abs(t.prob - r.top_k.probs[i])).toBeLessThan(1e-6);
      });
    }
  });

  test('"Save as example" stores a one-example run that shows in Runs and exports', async () => {
    await page.getByLabel('Example name (optional)').fill('eiffel at 1');
    await page.getByRole('button', { name: 'Save as example' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Saved as' }).innerText()).toMatch(/Saved as the one-example run “eiffel at 1”/);
    await shot('extract-03-saved');
    await page.getByRole('button', { name: 'Show in Runs' }).click();
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'eiffel at 1' }) });
    await expect.poll(() => row.count()).toBe(1);
    await shot('extract-04-runs');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export eiffel at 1 as JSON' }).click()]);
    const exported = JSON.parse(fs.readFileSync((await download.path())!, 'utf8'));
    expect(exported.examples).toHaveLength(1);
    expect(exported.examples[0].position).toBe(1);
    expect(exported.examples[0].layers).toHaveLength(3 * LAYERS);
    await page.getByRole('tab', { name: 'Extract' }).click();
  });

  test('a prompt longer than the model reads gets its message beside the prompt; an empty one too', async () => {
    await page.getByLabel('Prompt', { exact: true }).fill('word '.repeat(200));
    const note = page.locator('.extract-form').getByRole('alert').first();
    await expect.poll(() => note.innerText()).toMatch(/more than the model's n_positions \(128\)[\s\S]*prompt_too_long · text/);
    await shot('extract-05-too-long');
    await page.getByLabel('Prompt', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Run extraction' }).click();
    await expect.poll(() => note.innerText()).toMatch(/Type a prompt first/);
  });

  test('every control has an accessible name, and nothing broke: no page, console or CSP errors', async () => {
    const unnamed = await page.$$eval('button, input, select, textarea, [role=option]', (els) =>
      els.filter((el) => !((el as HTMLInputElement).labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent?.trim())).map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    expect(app.problems).toEqual([]);
  });
});
